"""What every OCPP version adapter needs: library fixes, error mapping, call waits, measurands."""
