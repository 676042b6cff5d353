"""The Raspberry Pi backend: hardware built from the board profile, and the bring-up tool."""
