use super::keys::markdown_table;
use super::*;

/// The README documents every setting, exactly as `KEYS` says.
/// `THUMBD_UPDATE_README=1 cargo test -p thumbd readme` rewrites the table.
#[test]
fn readme_documents_every_setting() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (head, rest) = readme
        .split_once("<!-- settings:table -->\n")
        .expect("start marker");
    let (_, tail) = rest
        .split_once("<!-- settings:end -->")
        .expect("end marker");
    let expected = format!(
        "{head}<!-- settings:table -->\n{}<!-- settings:end -->{tail}",
        markdown_table()
    );
    if std::env::var_os("THUMBD_UPDATE_README").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    assert!(
        readme == expected,
        "README settings table is stale: run THUMBD_UPDATE_README=1 cargo test -p thumbd readme"
    );
}

fn load(
    toml: Option<&str>,
    env: &[(&str, &str)],
    flags: &[(&str, &str)],
) -> Result<Settings, Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("thumbd.toml");
    if let Some(t) = toml {
        std::fs::write(&path, t).unwrap();
    }
    Settings::load(
        toml.map(|_| path.as_path()),
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        &flags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>(),
    )
}

#[test]
fn defaults_work_without_anything() {
    let s = load(None, &[], &[]).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
    assert!(
        matches!(&s.database, Database::Sqlite(p) if p == Path::new("./thumbd-data/thumbd.db"))
    );
    assert!(s.amqp_url.is_none());
    assert!(matches!(&s.storage, Storage::Files(p) if p == Path::new("./thumbd-data/blobs")));
    assert!(s.auth && !s.public_reads && s.jwt_secret.is_none());
    assert_eq!(s.thumbnail_size, (330, 330));
    assert_eq!(s.wait, Duration::from_secs(2));
}

#[test]
fn layers_in_order() {
    let s = load(
        Some("listen = \"0.0.0.0:1\"\nworkers = 3\nwait = 1\n"),
        &[("THUMBD_WORKERS", "5"), ("THUMBD_UNRELATED", "x")],
        &[("wait", "4")],
    )
    .unwrap();
    assert_eq!(s.listen.to_string(), "0.0.0.0:1", "file over default");
    assert_eq!(s.workers, 5, "environment over file");
    assert_eq!(s.wait, Duration::from_secs(4), "flag over environment");
    assert_eq!(s.prefetch, 10, "prefetch defaults to twice the workers");
}

#[test]
fn prefetch_is_at_least_workers() {
    let s = load(None, &[("THUMBD_WORKERS", "2")], &[("prefetch", "3")]).unwrap();
    assert_eq!((s.workers, s.prefetch), (2, 3));
    let errors = load(None, &[("THUMBD_WORKERS", "4")], &[("prefetch", "3")]).unwrap_err();
    assert!(
        errors.len() == 1 && errors[0].contains("prefetch: 3 is less than workers (4)"),
        "{errors:?}"
    );
}

#[test]
fn every_error_at_once() {
    let errors = load(
        Some("colour = \"blue\"\nworkers = 0\n"),
        &[("THUMBD_LISTEN", "nowhere"), ("THUMBD_AUTH", "maybe")],
        &[("thumbnail_size", "big")],
    )
    .unwrap_err();
    let all = errors.join("\n");
    for needle in [
        "unknown setting `colour`",
        "workers",
        "THUMBD_LISTEN",
        "auth",
        "thumbnail_size",
    ] {
        assert!(all.contains(needle), "{needle} missing from:\n{all}");
    }
    assert_eq!(errors.len(), 5, "{all}");
}

/// A `THUMBD_` variable a letter or two away from a setting is an error naming the setting;
/// the variables tools and Kubernetes set beside thumbd's pass.
#[test]
fn misspelled_variables_are_named_not_ignored() {
    let errors = load(
        None,
        &[
            ("THUMBD_WORKRS", "4"),
            ("THUMBD_PREFECH", "8"),
            ("THUMBD_JWT_SECRT_FILE", "/run/secrets/jwt"),
            ("THUMBD_WORKERS_FILE", "/run/secrets/workers"),
        ],
        &[],
    )
    .unwrap_err();
    let all = errors.join("\n");
    for needle in [
        "THUMBD_WORKRS is not a setting: did you mean THUMBD_WORKERS?",
        "THUMBD_PREFECH is not a setting: did you mean THUMBD_PREFETCH?",
        "THUMBD_JWT_SECRT_FILE is not a setting: did you mean THUMBD_JWT_SECRET?",
        "THUMBD_WORKERS_FILE: only secrets may come from a file",
    ] {
        assert!(all.contains(needle), "{needle} missing from:\n{all}");
    }
    assert_eq!(errors.len(), 4, "{all}");

    let others = [
        "THUMBD_SERVICE_HOST",
        "THUMBD_SERVICE_PORT",
        "THUMBD_PORT",
        "THUMBD_PORT_8080_TCP_ADDR",
        "THUMBD_CONFIG",
        "THUMBD_TEST_AMQP_URL",
        "THUMBD_TEST_DATABASE_URL",
        "THUMBD_REQUIRE_SERVICES",
        "THUMBD_UPDATE_README",
        "THUMBD_BENCH_CORPUS",
        "THUMBD_LOAD_WORKERS",
        "THUMBD_LOAD_PIXEL_BUDGET",
        "THUMBD_BIN",
    ];
    let env: Vec<(&str, &str)> = others.iter().map(|v| (*v, "x")).collect();
    load(None, &env, &[]).expect("not settings, not typos");
}

#[test]
fn job_timeout_is_the_time_limit_of_every_thumbnail() {
    let s = load(None, &[], &[]).unwrap();
    assert_eq!(s.job_timeout, Duration::from_secs(30));
    let s = load(None, &[("THUMBD_JOB_TIMEOUT", "7")], &[]).unwrap();
    assert_eq!(
        s.thumb_spec().limits.max_duration,
        Some(Duration::from_secs(7))
    );
    let errors = load(None, &[("THUMBD_JOB_TIMEOUT", "0")], &[]).unwrap_err();
    assert!(errors[0].contains("job_timeout"), "{errors:?}");
}

#[test]
fn input_formats_are_opt_in() {
    let s = load(None, &[], &[]).unwrap();
    assert_eq!(s.limits().accept_formats, InputFormats::DEFAULT);
    assert_eq!(s.thumb_spec().limits.accept_formats.to_string(), "png,jpeg");
    let s = load(None, &[("THUMBD_ACCEPT_FORMATS", "png,jpeg,gif")], &[]).unwrap();
    assert!(
        s.thumb_spec()
            .limits
            .accept_formats
            .contains(thumbcore::ImageFormat::Gif)
    );
    let s = load(Some("accept_formats = \"webp, png\"\n"), &[], &[]).unwrap();
    assert_eq!(s.limits().accept_formats.to_string(), "png,webp");
    for bad in ["", "png,bmp", "heic"] {
        let errors = load(None, &[("THUMBD_ACCEPT_FORMATS", bad)], &[]).unwrap_err();
        assert!(errors[0].contains("accept_formats"), "{bad}: {errors:?}");
    }
}

#[test]
fn output_format_takes_a_quality() {
    use thumbcore::ImageFormat;
    let spec = load(None, &[], &[]).unwrap().thumb_spec();
    assert_eq!(spec.format, ImageFormat::Png);
    let spec = load(None, &[("THUMBD_OUTPUT_FORMAT", "webp")], &[])
        .unwrap()
        .thumb_spec();
    assert_eq!(
        (spec.format, spec.webp_quality),
        (ImageFormat::WebP, Some(80))
    );
    let spec = load(None, &[("THUMBD_OUTPUT_FORMAT", "webp:lossless")], &[])
        .unwrap()
        .thumb_spec();
    assert_eq!((spec.format, spec.webp_quality), (ImageFormat::WebP, None));
    let spec = load(None, &[("THUMBD_OUTPUT_FORMAT", "jpeg:92")], &[])
        .unwrap()
        .thumb_spec();
    assert_eq!((spec.format, spec.jpeg_quality), (ImageFormat::Jpeg, 92));
    for bad in [
        "webp:0",
        "webp:101",
        "png:50",
        "gif",
        "jpeg:lossless",
        "avif",
    ] {
        let errors = load(None, &[("THUMBD_OUTPUT_FORMAT", bad)], &[]).unwrap_err();
        assert!(errors[0].contains("output_format"), "{bad}: {errors:?}");
    }
}

#[test]
fn secrets_are_not_printed() {
    let s = load(
        None,
        &[(
            "THUMBD_JWT_SECRET",
            "hunter2-very-secret-and-long-enough-now",
        )],
        &[],
    )
    .unwrap();
    assert!(!format!("{s:?}").contains("hunter2"));
}

#[test]
fn the_tenant_claim_cannot_be_one_read_for_something_else() {
    for claim in ["iss", "aud", "sub", "environment", ""] {
        let errors = load(None, &[("THUMBD_TENANT_CLAIM", claim)], &[]).unwrap_err();
        assert!(errors[0].contains("tenant_claim"), "{claim}: {errors:?}");
    }
    let s = load(None, &[("THUMBD_TENANT_CLAIM", "org_id")], &[]).unwrap();
    assert_eq!(s.tenant_claim, "org_id");
}

#[test]
fn secrets_may_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("jwt-secret");
    std::fs::write(&secret, "s3cret-from-a-mounted-file-0123456789\n").unwrap();
    let file = secret.to_str().unwrap();
    let s = load(None, &[("THUMBD_JWT_SECRET_FILE", file)], &[]).unwrap();
    assert_eq!(
        s.jwt_secret.unwrap().expose_secret(),
        "s3cret-from-a-mounted-file-0123456789",
        "the file's content, without its trailing newline"
    );
    let errors = load(
        None,
        &[
            ("THUMBD_JWT_SECRET_FILE", file),
            ("THUMBD_JWT_SECRET", "x".repeat(40).as_str()),
        ],
        &[],
    )
    .unwrap_err();
    assert!(errors[0].contains("both set"), "{errors:?}");
    let missing = dir.path().join("none");
    let errors = load(
        None,
        &[("THUMBD_JWT_SECRET_FILE", missing.to_str().unwrap())],
        &[],
    )
    .unwrap_err();
    assert!(errors[0].contains("cannot read"), "{errors:?}");
    assert!(!errors.join(" ").contains("s3cret"));

    // The URL signing key too, and it must be as long as a JWT secret.
    let s = load(None, &[("THUMBD_URL_SIGNING_KEY_FILE", file)], &[]).unwrap();
    assert_eq!(
        s.url_signing_key.unwrap().expose_secret(),
        "s3cret-from-a-mounted-file-0123456789"
    );
    let errors = load(None, &[("THUMBD_URL_SIGNING_KEY", "short-s3cret")], &[]).unwrap_err();
    assert!(
        errors[0].starts_with("url_signing_key: 12 bytes"),
        "{errors:?}"
    );
    assert!(!errors.join(" ").contains("short-s3cret"));
}

#[test]
fn a_short_secret_is_refused_without_being_printed() {
    let errors = load(None, &[("THUMBD_JWT_SECRET", "hunter2-short")], &[]).unwrap_err();
    assert!(
        errors.len() == 1 && errors[0].contains("jwt_secret: 13 bytes is too short"),
        "{errors:?}"
    );
    assert!(!errors[0].contains("hunter2"), "{errors:?}");
    let long = "x".repeat(MIN_SECRET_BYTES);
    assert!(load(None, &[("THUMBD_JWT_SECRET", &long)], &[]).is_ok());
}

#[test]
fn profiles_come_from_the_environment_or_file_tables() {
    let s = load(None, &[], &[]).unwrap();
    assert_eq!(s.profiles.default_for("production").list(), "330:png");
    assert_eq!(s.profiles.names(), ["default"]);

    let s = load(
        None,
        &[
            (
                "THUMBD_PROFILES",
                "web=80:webp,160:webp,330:png;icons=64:png",
            ),
            ("THUMBD_DEFAULT_PROFILE", "web"),
            ("THUMBD_OUTPUT_FORMAT", "jpeg:70"),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(s.profiles.default_for("production").name, "web");
    assert_eq!(s.profiles.get("icons").unwrap().list(), "64:png");
    assert_eq!(
        s.profiles.get("default").unwrap().list(),
        "330:jpeg:70",
        "`default` follows thumbnail_size and output_format"
    );

    let s = load(
        None,
        &[
            ("THUMBD_PROFILES", "web=80:webp,330:png"),
            ("THUMBD_DEFAULT_PROFILE", "production=web"),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(s.profiles.default_for("production").name, "web");
    assert_eq!(s.profiles.default_for("development").name, "default");

    let file = "default_profile = \"web\"\n\n[profiles.web]\nrenditions = [\"80:webp\", \"330:webp:lossless\"]\n";
    let s = load(Some(file), &[], &[]).unwrap();
    assert_eq!(
        s.profiles.default_for("development").list(),
        "80:webp:80,330:webp:lossless"
    );

    for (env, key) in [
        (("THUMBD_PROFILES", "web=80:gif"), "profiles"),
        (("THUMBD_PROFILES", "web"), "profiles"),
        (("THUMBD_PROFILES", "default=80:png"), "profiles"),
        (("THUMBD_DEFAULT_PROFILE", "nope"), "default_profile"),
        (
            ("THUMBD_DEFAULT_PROFILE", "staging=default"),
            "default_profile",
        ),
        (
            ("THUMBD_DEFAULT_PROFILE", "production=nope"),
            "default_profile",
        ),
    ] {
        let errors = load(None, &[env], &[]).unwrap_err();
        assert!(errors[0].contains(key), "{env:?}: {errors:?}");
    }
    let errors = load(Some("[profiles.web]\nsizes = 1\n"), &[], &[]).unwrap_err();
    assert!(errors[0].contains("renditions"), "{errors:?}");
}
