"""The dashboard's screens and the views inside the main screen's tabs."""
