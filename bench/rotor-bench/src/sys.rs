//! CPU and memory readings from Linux's `/proc` and `getrusage`: the generator's
//! own CPU time (so that a run shows it was not the bottleneck), the server's CPU
//! time and resident set, and how busy the whole machine was.

/// Readings at one instant.
pub struct Sample {
    bench_cpu_s: f64,
    server_cpu_s: Option<f64>,
    server_rss_kib: Option<(u64, u64)>,
    machine: Option<(u64, u64)>,
}

/// What happened between two samples.
pub struct Usage {
    /// CPU seconds per second used by this process.
    pub bench_cores: f64,
    /// `bench_cores` over the number of CPUs.
    pub bench_share: f64,
    pub server_cores: Option<f64>,
    pub server_rss_mib: Option<f64>,
    pub server_rss_peak_mib: Option<f64>,
    /// Share of all CPUs not idle.
    pub machine_busy: Option<f64>,
}

impl Sample {
    pub fn take(server_pid: Option<u32>) -> Sample {
        Sample {
            bench_cpu_s: own_cpu_seconds(),
            server_cpu_s: server_pid.and_then(process_cpu_seconds),
            server_rss_kib: server_pid.and_then(process_rss_kib),
            machine: machine_ticks(),
        }
    }
}

impl Usage {
    pub fn between(a: &Sample, b: &Sample, secs: f64) -> Usage {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        let bench_cores = (b.bench_cpu_s - a.bench_cpu_s) / secs;
        Usage {
            bench_cores,
            bench_share: bench_cores / cpus,
            server_cores: a
                .server_cpu_s
                .zip(b.server_cpu_s)
                .map(|(x, y)| (y - x) / secs),
            server_rss_mib: b.server_rss_kib.map(|(rss, _)| rss as f64 / 1024.0),
            server_rss_peak_mib: b.server_rss_kib.map(|(_, peak)| peak as f64 / 1024.0),
            machine_busy: a.machine.zip(b.machine).map(|((b0, t0), (b1, t1))| {
                let total = t1.saturating_sub(t0);
                if total == 0 {
                    0.0
                } else {
                    b1.saturating_sub(b0) as f64 / total as f64
                }
            }),
        }
    }
}

fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own and reads nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return 0.0;
        }
        usage
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// utime + stime of a process, from `/proc/PID/stat`.
fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of proc(5), counted from `state` as field 3.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks_per_second())
}

/// (VmRSS, VmHWM) of a process in KiB.
fn process_rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// (busy, total) CPU ticks of the whole machine, from `/proc/stat`.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|t| t.parse().ok())
        .collect();
    let total: u64 = ticks.iter().sum();
    // idle + iowait
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}
