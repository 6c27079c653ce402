//! A PostgreSQL server of the test's own, on a free loopback port, for fault tests that stop
//! and restart the database without disturbing the shared one the other tests use.
//!
//! It is built from the PostgreSQL server binaries on the machine (`initdb`, `pg_ctl`): the
//! newest under `/usr/lib/postgresql/*/bin`, or the folder named by
//! `SHIPSHAPE_TEST_POSTGRES_BIN`. PostgreSQL refuses to run as root, so when the tests run as
//! root the server runs as the `postgres` user (through `runuser`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A private PostgreSQL server; stopped and removed when dropped.
#[derive(Debug)]
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

fn server_binaries() -> PathBuf {
    if let Ok(dir) = std::env::var("SHIPSHAPE_TEST_POSTGRES_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .filter(|bin| bin.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries (initdb, pg_ctl) are needed: install the postgresql \
             package or set SHIPSHAPE_TEST_POSTGRES_BIN"
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PrivatePostgres {
    /// Creates a cluster in a new temporary folder and starts it.
    pub fn start() -> PrivatePostgres {
        let dir =
            std::env::temp_dir().join(format!("shipshape_pg_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let pg = PrivatePostgres {
            bin: server_binaries(),
            dir,
            port: crate::free_port(),
            as_postgres_user: is_root(),
        };
        if pg.as_postgres_user {
            pg.run("chown", &["-R", "postgres:postgres", pg.dir_str()], false);
        }
        let data = pg.data_dir();
        pg.run(
            &pg.tool("initdb"),
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
            true,
        );
        pg.start_server();
        pg
    }

    /// The URL of the server (its `postgres` database).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once, as a crash or an operator's fast restart would (open
    /// connections are cut).
    pub fn stop(&self) {
        let data = self.data_dir();
        self.run(
            &self.tool("pg_ctl"),
            &["-D", &data, "-m", "fast", "-w", "stop"],
            true,
        );
    }

    /// Starts the stopped server again, on the same port and data.
    pub fn start_server(&self) {
        let data = self.data_dir();
        let log = self.dir.join("server.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir_str()
        );
        self.run(
            &self.tool("pg_ctl"),
            &[
                "-D",
                &data,
                "-l",
                log.to_str().unwrap_or_default(),
                "-o",
                &options,
                "-w",
                "start",
            ],
            true,
        );
    }

    fn dir_str(&self) -> &str {
        self.dir.to_str().unwrap_or_default()
    }

    fn data_dir(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    fn tool(&self, name: &str) -> String {
        self.bin.join(name).to_string_lossy().into_owned()
    }

    fn run(&self, program: &str, args: &[&str], as_server_user: bool) {
        let mut cmd = if as_server_user && self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", program]);
            c
        } else {
            Command::new(program)
        };
        let out = cmd
            .args(args)
            .current_dir(Path::new("/"))
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data_dir();
        let pg_ctl = self.tool("pg_ctl");
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = if self.as_postgres_user {
            Command::new("runuser")
                .args(["-u", "postgres", "--", &pg_ctl])
                .args(args)
                .output()
        } else {
            Command::new(&pg_ctl).args(args).output()
        };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
