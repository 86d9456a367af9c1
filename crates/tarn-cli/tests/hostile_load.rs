//! `tarn serve` under one anonymous client holding 1,000 connections (issue 18, "Done when"):
//! slow readers of a large public artifact, half-sent request heads, idle keep-alives,
//! 10 kB `Host` headers and a 4 MiB bulk body trickled at 1.1 KiB/s, every connection
//! reopened as soon as the server closes it. Beside it a legitimate client signs a
//! `tarn put-staged` and runs `tarn get`, a monitor polls `/healthz` every 100 ms and a
//! second client times its GETs. The figures are printed (`hostile-load …`) for
//! RELIABILITY.md.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tarn_test::*;
use tokio::io::AsyncWriteExt;

use crate::hostile_client::{addr, bulk_request, peak_rss_kb};
use crate::serve_roundtrip::{get, put_staged, KEY};

/// The attacker's one address (the legitimate client runs from 127.0.0.1, the monitor
/// from 127.0.0.3, the second client from 127.0.0.2).
const ATTACKER: &str = "127.0.0.5";
/// Connections the attacker holds open (reopening each one the server closes).
const CONNECTIONS: usize = 1000;
/// The server's memory goal under the attack (kernel `VmHWM`).
const SERVER_RSS_GOAL_KB: u64 = 300 * 1024;

/// What one of the attacker's connections does.
#[derive(Clone, Copy, Debug)]
enum Attack {
    /// GETs the large public artifact and reads 1 KiB a second.
    SlowReader,
    /// Sends half a request head, then one more header line a second.
    HalfSentHead,
    /// Asks `/healthz` once and keeps the connection open, silent.
    IdleKeepAlive,
    /// A bulk request with a 10 kB `Host` header, then silence.
    LongHost,
    /// A bulk request announcing 4 MiB, its body sent at 1.1 KiB/s.
    TrickledBulk,
}

impl Attack {
    fn of(i: usize) -> Attack {
        match i % 10 {
            _ if i == 0 => Attack::TrickledBulk,
            0..=3 => Attack::SlowReader,
            4..=6 => Attack::HalfSentHead,
            7..=8 => Attack::IdleKeepAlive,
            _ => Attack::LongHost,
        }
    }
}

/// What the attacker saw.
#[derive(Default)]
struct Tally {
    /// Connections opened (the first 1,000 and every reopening).
    opened: AtomicU64,
    /// Connections open right now, and the most at once.
    open: AtomicU64,
    most_open: AtomicU64,
    /// Connections answered `503` (over the attacker's share of the slots).
    refused: AtomicU64,
    /// Bytes of the large artifact the slow readers got.
    read: AtomicU64,
}

/// Holds one attacker connection of kind `attack` open until `stop`, reopening it a second
/// after the server closes it.
async fn hold(
    attack: Attack,
    server: SocketAddr,
    big: Arc<String>,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Relaxed) {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{ATTACKER}:0").parse().unwrap()).unwrap();
        let Ok(mut s) = sock.connect(server).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        tally.opened.fetch_add(1, Relaxed);
        let now_open = tally.open.fetch_add(1, Relaxed) + 1;
        tally.most_open.fetch_max(now_open, Relaxed);
        // What is sent at once, what each tick (200 ms) sends, how much each tick reads.
        let (first, per_tick, read_per_tick): (Vec<u8>, Vec<u8>, usize) = match attack {
            Attack::SlowReader => (
                format!("GET {big} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
                Vec::new(),
                205,
            ),
            Attack::HalfSentHead => (
                format!("GET {big} HTTP/1.1\r\nHost: x\r\n").into_bytes(),
                b"X: y\r\n".to_vec(),
                1 << 16,
            ),
            Attack::IdleKeepAlive => (
                b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
                Vec::new(),
                1 << 16,
            ),
            Attack::LongHost => (bulk_request(&"h".repeat(10_000), 1000), Vec::new(), 1 << 16),
            Attack::TrickledBulk => (
                format!(
                    "POST /api/v1/repositories/o/r/artifacts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n[",
                    4 << 20
                )
                .into_bytes(),
                // 19 × 12 bytes every 200 ms: 1.1 KiB/s.
                "\"0000000000000001\",".repeat(12).into_bytes(),
                1 << 16,
            ),
        };
        let mut got = 0usize;
        let mut head = Vec::new();
        if s.write_all(&first).await.is_ok() {
            let mut tick = 0u64;
            'held: while !stop.load(Relaxed) {
                tokio::time::sleep(Duration::from_millis(200)).await;
                tick += 1;
                // The half-sent head grows by a line a second.
                let send = !per_tick.is_empty()
                    && (matches!(attack, Attack::TrickledBulk) || tick.is_multiple_of(5));
                if send && s.write_all(&per_tick).await.is_err() {
                    break;
                }
                let mut buf = vec![0u8; read_per_tick];
                loop {
                    match s.try_read(&mut buf) {
                        Ok(0) => break 'held,
                        Ok(n) => {
                            got += n;
                            if head.len() < 12 {
                                head.extend_from_slice(&buf[..n.min(12 - head.len())]);
                            }
                            if matches!(attack, Attack::SlowReader) {
                                break;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(_) => break 'held,
                    }
                }
            }
        }
        if head.starts_with(b"HTTP/1.1 503") {
            tally.refused.fetch_add(1, Relaxed);
        }
        if matches!(attack, Attack::SlowReader) {
            tally.read.fetch_add(got as u64, Relaxed);
        }
        drop(s);
        tally.open.fetch_sub(1, Relaxed);
        if !stop.load(Relaxed) {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// The median of `samples`.
fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// `n` GETs of `path` from the second client's address, one new connection each, 50 ms
/// apart: the median time to the whole reply.
fn second_client_latency(a: &str, path: &str, n: usize) -> Duration {
    let samples = (0..n)
        .map(|_| {
            let (reply, took) = get_from("127.0.0.2", a, path);
            assert!(
                reply.starts_with(b"HTTP/1.1 200"),
                "the second client's GET: {}",
                String::from_utf8_lossy(&reply[..reply.len().min(300)])
            );
            std::thread::sleep(Duration::from_millis(50));
            took
        })
        .collect();
    median(samples)
}

/// Uploads one artifact of `len` bytes; returns its request path.
fn upload_artifact(srv: &TarnServer, dir: &Path, len: usize, seed: u64) -> String {
    let (file, hash, _) = make_artifacts(dir, 1, len, seed).remove(0);
    let path = format!("/a0/main/x/{hash}.art");
    let (code, body) = lake_put(
        KEY,
        &file,
        &format!("{}{path}", srv.url),
        "application/vnd.reservoir.artifact",
    );
    assert_eq!(code, 200, "{body}");
    path
}

#[test]
fn one_client_with_a_thousand_connections_starves_no_one() {
    // The attacker's sockets, the monitor's and the clients' beside them.
    let need = CONNECTIONS as u64 + 256;
    let limit = tarn_server::raise_fd_limit().unwrap_or(0);
    assert!(
        limit >= need,
        "this test holds {need} open files at once, but the limit is {limit} even raised to \
         the hard limit; raise it (`ulimit -n {need}` or more) and run it again"
    );
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // A default server: 512 connection slots, public reads, one key.
    let srv = TarnServer::with_key(&data, &format!("{KEY}:*"));
    let a = addr(&srv);
    let big = Arc::new(upload_artifact(&srv, &tmp.path().join("big"), 16 << 20, 1));
    let small = upload_artifact(&srv, &tmp.path().join("small"), 64 << 10, 2);
    let normal = second_client_latency(&a, &small, 21);

    // The monitor: `/healthz` every 100 ms from its own address, from before the attack
    // until the end; the worst latency and every answer that is not 200.
    let monitoring = Arc::new(AtomicBool::new(true));
    let monitor = {
        let (a, monitoring) = (a.clone(), monitoring.clone());
        std::thread::spawn(move || {
            let mut polls = Vec::new();
            while monitoring.load(Relaxed) {
                let at = Instant::now();
                let (reply, took) = get_from("127.0.0.3", &a, "/healthz");
                let ok = reply.starts_with(b"HTTP/1.1 200");
                let text = String::from_utf8_lossy(&reply[..reply.len().min(200)]).into_owned();
                polls.push(HealthzPoll { at, took, ok, text });
                std::thread::sleep(Duration::from_millis(100).saturating_sub(took));
            }
            polls
        })
    };
    std::thread::sleep(Duration::from_secs(2));

    // The attacker.
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server: SocketAddr = a.parse().unwrap();
    for i in 0..CONNECTIONS {
        rt.spawn(hold(
            Attack::of(i),
            server,
            big.clone(),
            tally.clone(),
            stop.clone(),
        ));
    }
    let attack_start = Instant::now();
    wait_until(20, || tally.opened.load(Relaxed) >= CONNECTIONS as u64);
    std::thread::sleep(Duration::from_secs(2));

    // The second client, under attack.
    let attacked = second_client_latency(&a, &small, 21);

    // The legitimate client: a signed put-staged, then a get of what it put.
    let home = tmp.path().join("home");
    srv.client_home(&home);
    let arts = artifacts(25, 18);
    let staging = tmp.path().join("staging");
    write_staging(&staging, &arts, 18);
    let rev = "1818181818181818181818181818181818181818";
    let t = Instant::now();
    let (code, out) = put_staged(&home, &staging, rev);
    let put_time = t.elapsed();
    assert_eq!(code, 0, "put-staged under attack: {out}");
    let cache = tmp.path().join("cache");
    let t = Instant::now();
    let (code, out) = get(&home, &cache, rev);
    let get_time = t.elapsed();
    assert_eq!(code, 0, "get under attack: {out}");
    assert!(check_cache(&cache, &arts).is_empty());

    // Past the header timeout (10 s): the half-sent heads have been closed and reopened.
    while attack_start.elapsed() < Duration::from_secs(14) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let still_open = tally.open.load(Relaxed);
    let rss_kb = peak_rss_kb(&srv);
    monitoring.store(false, Relaxed);
    let polls = monitor.join().unwrap();
    stop.store(true, Relaxed);
    rt.shutdown_timeout(Duration::from_secs(2));

    let (before, during): (Vec<_>, Vec<_>) = polls.iter().partition(|p| p.at < attack_start);
    let healthz_normal = median(before.iter().map(|p| p.took).collect());
    let healthz_attacked = median(during.iter().map(|p| p.took).collect());
    let (healthz_worst, worst_at) = during
        .iter()
        .map(|p| (p.took, p.at.duration_since(attack_start)))
        .max()
        .unwrap_or_default();
    let not_200: Vec<&str> = polls
        .iter()
        .filter(|p| !p.ok)
        .map(|p| p.text.as_str())
        .collect();
    eprintln!(
        "hostile-load attacker: {} connections opened over {:?}, {} open at the end, at most {} at once, {} answered 503, {} bytes read by slow readers",
        tally.opened.load(Relaxed),
        attack_start.elapsed(),
        still_open,
        tally.most_open.load(Relaxed),
        tally.refused.load(Relaxed),
        tally.read.load(Relaxed),
    );
    eprintln!(
        "hostile-load second-client GET (64 KiB, median of 21): {attacked:?} under attack, {normal:?} alone"
    );
    eprintln!("hostile-load put-staged {put_time:?}, get {get_time:?}");
    eprintln!(
        "hostile-load /healthz every 100 ms: median {healthz_attacked:?} under attack ({} polls, worst {healthz_worst:?}, {worst_at:?} into the attack), {healthz_normal:?} alone ({} polls), {} not 200",
        during.len(),
        before.len(),
        not_200.len()
    );
    eprintln!("hostile-load server peak RSS {rss_kb} kB");
    assert!(
        tally.refused.load(Relaxed) > 0,
        "the attacker never filled its share of the connection slots: no test"
    );
    assert!(not_200.is_empty(), "/healthz under attack: {not_200:?}");
    assert!(
        rss_kb <= SERVER_RSS_GOAL_KB,
        "server peak RSS {rss_kb} kB (goal {SERVER_RSS_GOAL_KB} kB)"
    );
    // Twice the normal latency, plus 2 ms of scheduling noise (the normal one is about a
    // millisecond on loopback).
    let slack = Duration::from_millis(2);
    assert!(
        attacked <= normal * 2 + slack,
        "the second client's GET took {attacked:?} under attack, {normal:?} alone"
    );
    assert!(
        healthz_attacked <= healthz_normal * 2 + slack,
        "/healthz took {healthz_attacked:?} under attack, {healthz_normal:?} alone"
    );
}

/// One `/healthz` poll of the monitor.
struct HealthzPoll {
    at: Instant,
    took: Duration,
    ok: bool,
    text: String,
}
