//! tarn-store: see ARCHITECTURE.md.
