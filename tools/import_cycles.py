"""Lists the import cycles between modules: ``python tools/import_cycles.py PACKAGE ...``.

Each cycle is a strongly connected component of the module import graph (grimp, the
library under import-linter, reads it; imports inside functions and under
``if TYPE_CHECKING:`` count). Prints one line per cycle and the count, then the same
for the top-level packages (pm_hub <-> pm_agent, ...); exits 1 when there is any.
``make lint`` holds the same rule with import-linter's ``acyclic_siblings``
contract; this script is for counting and for old checkouts
(``PYTHONPATH=/old/checkout python tools/import_cycles.py pm_hub pm_agent pm_tui``).
"""

from __future__ import annotations

import sys

import grimp


def module_graph(packages: list[str]) -> dict[str, list[str]]:
    """Each module of ``packages`` -> the modules of ``packages`` it imports."""
    graph = grimp.build_graph(*packages, cache_dir=None)
    modules = sorted(graph.modules)
    return {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}


def package_graph(modules: dict[str, list[str]]) -> dict[str, list[str]]:
    """The same graph between top-level packages (pm_hub -> pm_agent, ...)."""
    top: dict[str, set[str]] = {}
    for module, imported in modules.items():
        mine = module.split(".")[0]
        top.setdefault(mine, set()).update(
            other.split(".")[0] for other in imported if other.split(".")[0] != mine
        )
    return {package: sorted(targets) for package, targets in top.items()}


def cycles(edges: dict[str, list[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node."""
    modules = sorted(edges)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:  # Tarjan's algorithm, iterative
        nonlocal counter
        work = [(start, iter(edges.get(start, ())))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in edges:
                    continue  # outside the packages asked about
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return sorted(found)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    modules = module_graph(argv)
    found = cycles(modules)
    for component in found:
        print(f"{len(component)} modules: {', '.join(component)}")
    print(f"{len(found)} import cycle(s) between modules of {', '.join(argv)}")
    between = cycles(package_graph(modules))
    for component in between:
        print(f"packages in a cycle: {', '.join(component)}")
    print(f"{len(between)} import cycle(s) between top-level packages")
    return 1 if found or between else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
