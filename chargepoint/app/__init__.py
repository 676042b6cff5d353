"""The daemon: assembles hardware, safety loops, station, CSMS link and local surfaces, and runs them."""
