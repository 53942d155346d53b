// The official Socket.IO client (socket.io-client 4) as a browser dashboard would use
// it: connect to /ops over ws:// or wss:// (a private CA from argv[4]), call
// printers:list with an ack, print what came back as one JSON line, and exit.
import { readFileSync } from "node:fs";
import { io } from "socket.io-client";

const [url, token, caFile] = process.argv.slice(2);
const options = { transports: ["websocket"], auth: { token }, reconnection: false, timeout: 5000 };
if (caFile) options.ca = readFileSync(caFile);
const socket = io(`${url}/ops`, options);
const done = (result, code) => {
  console.log(JSON.stringify(result));
  socket.close();
  process.exit(code);
};
socket.on("connect_error", (err) => done({ connected: false, error: err.message }, 1));
socket.on("connect", () => {
  socket.timeout(5000).emit("printers:list", {}, (err, ack) => {
    if (err) return done({ connected: true, error: String(err) }, 1);
    done({ connected: true, ack }, 0);
  });
});
setTimeout(() => done({ connected: false, error: "timed out" }, 1), 10000);
