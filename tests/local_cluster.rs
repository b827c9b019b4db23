//! `deploy/local-cluster.sh` as operators run it: two `thumbd api` and two `thumbd worker`
//! processes against the local RabbitMQ and PostgreSQL, uploads through each api, every job
//! succeeded, everything it started stopped and removed.

use std::process::Command;

use thumbd_jobs::services;

#[test]
fn the_local_cluster_script_runs_apis_and_workers_end_to_end() {
    let test = "the_local_cluster_script_runs_apis_and_workers_end_to_end";
    let Some(amqp) = services::service_url(
        "THUMBD_TEST_AMQP_URL",
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        test,
    ) else {
        return;
    };
    let Some(db) = services::service_url(
        "THUMBD_TEST_DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/test",
        test,
    ) else {
        return;
    };
    let out = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/local-cluster.sh"
        ))
        .arg("5")
        .env("THUMBD_BIN", env!("CARGO_BIN_EXE_thumbd"))
        .env("THUMBD_AMQP_URL", &amqp)
        .env("THUMBD_TEST_DATABASE_URL", &db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("all 10 uploads succeeded (through 2 apis, 2 workers)"),
        "{stdout}"
    );
    // It removed what it made.
    let schema = stdout
        .split("schema ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("the schema it used");
    let left = Command::new("psql")
        .args([&db, "-tAc"])
        .arg(format!(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = '{schema}'"
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "0");
    // And stopped every process it started (their data dirs are under its work dir).
    let dir = stdout
        .split("dir ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("the directory it used");
    let running: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(dir))
        .collect();
    assert!(running.is_empty(), "still running: {running:?}");
}
