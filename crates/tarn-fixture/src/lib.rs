//! tarn-fixture: see ARCHITECTURE.md.
