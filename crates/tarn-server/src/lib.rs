//! tarn-server: see ARCHITECTURE.md.
