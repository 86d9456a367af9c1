//! The test process's own file-descriptor limit: a test that holds many sockets at once
//! raises its soft limit to the hard one and learns whether it has what it needs.

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit and checks that at least
/// `need` descriptors may be open; the error says what the limits are and how to raise them.
pub fn raise_fd_limit(need: u64) -> Result<u64, String> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return Err(format!(
                "getrlimit(RLIMIT_NOFILE): {}",
                std::io::Error::last_os_error()
            ));
        }
        if r.rlim_cur < r.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                r = raised;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)]
    let (soft, hard) = (r.rlim_cur as u64, r.rlim_max as u64);
    if soft < need {
        return Err(format!(
            "this test needs {need} open files at once, but the limit is {soft} (hard limit \
             {hard}); raise it (`ulimit -n {need}` or more) and run it again"
        ));
    }
    Ok(soft)
}
