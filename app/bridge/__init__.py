"""The bridge between the window and the engine: Qt threads that talk to job processes."""
