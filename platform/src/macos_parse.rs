//! Pure parsers for macOS data (sysctl buffers), built and tested on every OS.
