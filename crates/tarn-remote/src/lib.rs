//! tarn-remote: see ARCHITECTURE.md.
