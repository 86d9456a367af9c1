//! A real server in process on a socket: what `tarn serve --config FILE --listen
//! 127.0.0.1:0` runs ([`tarn_server::start`], then [`tarn_server::Serving::run`] on a
//! multi-threaded runtime, as the binary builds them), for the tests that need the wire —
//! connection caps, keep-alive and request-head timeouts, slow readers — but not the
//! binary.

use tarn_server::config::ServerConfig;
use tarn_server::ServeOptions;

/// A listening server; it stops when this is dropped (its runtime with it).
pub(crate) struct Listening {
    /// `host:port`, for raw sockets.
    pub(crate) addr: String,
    /// `http://host:port`.
    pub(crate) url: String,
    _rt: tokio::runtime::Runtime,
    _tmp: tempfile::TempDir,
}

impl Listening {
    /// Serves `toml` (a `tarn serve --config` file without `data`, which is set to a fresh
    /// temporary directory; `listen` is `127.0.0.1:0`) with the binary's defaults for the
    /// rest.
    pub(crate) fn start(toml: &str) -> Listening {
        Listening::start_in(tempfile::tempdir().unwrap(), toml, ServeOptions::default())
    }

    /// [`Listening::start`] with `tarn serve`'s command-line options (`--gc-interval`), its
    /// data directory `tmp/data` (which the test may have filled first).
    pub(crate) fn start_in(tmp: tempfile::TempDir, toml: &str, opts: ServeOptions) -> Listening {
        let data = tmp.path().join("data");
        let text = format!("data = \"{}\"\n{toml}", data.display());
        let mut cfg = ServerConfig::parse(&text)
            .unwrap_or_else(|e| panic!("the test's configuration: {e}\n{text}"));
        cfg.listen = "127.0.0.1:0".to_string();
        // The runtime `tarn serve` builds: one worker per core.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let serving = rt
            .block_on(tarn_server::start(cfg, opts))
            .unwrap_or_else(|e| panic!("the server did not start: {e}"));
        let addr = serving.local_addr().to_string();
        rt.spawn(serving.run(std::future::pending()));
        Listening {
            url: format!("http://{addr}"),
            addr,
            _rt: rt,
            _tmp: tmp,
        }
    }
}
