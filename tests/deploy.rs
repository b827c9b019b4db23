//! The files in `deploy/` agree with the code: RabbitMQ definitions with the topology
//! thumbd declares, every `THUMBD_*` variable and TOML key with the settings `thumbd --help`
//! prints, probes and ports with what `api` and `worker` serve. No container engine, no
//! network: files are parsed and compared.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use thumbd_amqp::{AmqpOptions, ROUTING_KEY, Topology};
use yaml_rust2::{Yaml, YamlLoader};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn read(rel: &str) -> String {
    let path = deploy_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every document of a YAML file, with `<<` merge keys resolved (compose uses them; the
/// YAML 1.2 parser leaves them as plain keys).
fn yaml_docs(rel: &str) -> Vec<Yaml> {
    let docs = YamlLoader::load_from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    docs.into_iter()
        .filter(|d| !d.is_null())
        .map(resolve_merges)
        .collect()
}

fn resolve_merges(node: Yaml) -> Yaml {
    match node {
        Yaml::Array(items) => Yaml::Array(items.into_iter().map(resolve_merges).collect()),
        Yaml::Hash(hash) => {
            let merge_key = Yaml::String("<<".into());
            let mut out = yaml_rust2::yaml::Hash::new();
            if let Some(merged) = hash.get(&merge_key) {
                let sources = match merged {
                    Yaml::Array(list) => list.clone(),
                    one => vec![one.clone()],
                };
                for source in sources {
                    if let Yaml::Hash(h) = resolve_merges(source) {
                        out.extend(h);
                    }
                }
            }
            for (k, v) in hash {
                if k != merge_key {
                    out.insert(k, resolve_merges(v));
                }
            }
            Yaml::Hash(out)
        }
        other => other,
    }
}

fn str_of<'a>(y: &'a Yaml, what: &str) -> &'a str {
    y.as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, got {y:?}"))
}

fn strings(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A setting as `thumbd --help` prints it: TOML key, environment variable, default.
struct Setting {
    key: String,
    var: String,
    default: String,
}

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_thumbd"))
        .args(args)
        .output()
        .expect("run thumbd --help");
    assert!(out.status.success(), "thumbd {args:?} failed");
    String::from_utf8(out.stdout).expect("utf-8 help")
}

/// The settings table of `thumbd --help`: lines `  key   THUMBD_KEY   [default]`.
fn settings() -> Vec<Setting> {
    let text = help(&["--help"]);
    let table = text
        .split_once("Settings (TOML key / environment variable, default):")
        .expect("settings section in thumbd --help")
        .1;
    let settings: Vec<Setting> = table
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (key, var, default) = (words.next()?, words.next()?, words.next()?);
            let default = default.strip_prefix('[')?.strip_suffix(']')?;
            var.starts_with("THUMBD_").then(|| Setting {
                key: key.to_owned(),
                var: var.to_owned(),
                default: default.to_owned(),
            })
        })
        .collect();
    assert!(
        settings.len() >= 20 && settings.iter().any(|s| s.var == "THUMBD_AMQP_URL"),
        "could not read the settings from thumbd --help"
    );
    settings
}

/// Every `THUMBD_*` name in a text.
fn thumbd_vars(text: &str) -> BTreeSet<String> {
    text.match_indices("THUMBD_")
        .map(|(at, _)| {
            text[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect::<String>()
                .trim_end_matches('_')
                .to_owned()
        })
        // `THUMBD_*` in prose names them all, not one.
        .filter(|name| name != "THUMBD")
        .collect()
}

/// Real variables: the settings, plus those of the subcommands' options (THUMBD_CONFIG).
fn real_vars() -> BTreeSet<String> {
    let mut vars: BTreeSet<String> = settings().into_iter().map(|s| s.var).collect();
    vars.extend(thumbd_vars(&help(&["api", "--help"])));
    vars
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read deploy dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// `host:port` → port.
fn port_of(listen: &str) -> i64 {
    listen
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {listen:?}"))
}

/// The port and path of `http://host:port/path…` inside a string.
fn url_port_and_path(text: &str) -> (i64, String) {
    let at = text
        .find("http://")
        .unwrap_or_else(|| panic!("no URL in {text:?}"));
    let rest = &text[at + "http://".len()..];
    let end = rest.find([' ', '"', '\'']).unwrap_or(rest.len());
    let (authority, path) = rest[..end].split_once('/').expect("URL with a path");
    (port_of(authority), format!("/{path}"))
}

const PROBE_PATHS: [&str; 2] = ["/healthz", "/readyz"];

#[test]
fn rabbitmq_definitions_match_the_topology() {
    // The image jobs' topology, the webhook lane's (with the default retry schedule) and the
    // rendition lane's.
    let options = AmqpOptions::default();
    let webhooks = AmqpOptions {
        namespace: format!("{}.{}", options.namespace, thumbd_jobs::WEBHOOK_LANE),
        retry_delays: thumbd_worker::DeliveryOptions::default().schedule,
        ..AmqpOptions::default()
    };
    let renditions = AmqpOptions {
        namespace: format!("{}.{}", options.namespace, thumbd_jobs::RENDITION_LANE),
        ..AmqpOptions::default()
    };
    let topologies = [
        Topology::new(&options),
        Topology::new(&webhooks),
        Topology::new(&renditions),
    ];
    let defs: Value = serde_json::from_str(&read("rabbitmq/definitions.json")).expect("JSON");

    let quorum = |dlx: &str| {
        json!({
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": dlx,
            "x-dead-letter-routing-key": ROUTING_KEY,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        })
    };
    let mut expected_queues = BTreeMap::new();
    for topology in &topologies {
        let mut jobs = quorum(&topology.dead_letter_exchange);
        jobs["x-delivery-limit"] = json!(options.delivery_limit);
        expected_queues.insert(topology.queue.clone(), jobs);
        expected_queues.insert(
            topology.dead_letter_queue.clone(),
            json!({"x-queue-type": "quorum"}),
        );
        for (name, delay) in &topology.retry_queues {
            let mut args = quorum(&topology.exchange);
            args["x-message-ttl"] = json!(u64::try_from(delay.as_millis()).expect("ms"));
            expected_queues.insert(name.clone(), args);
        }
    }

    let queues = defs["queues"].as_array().expect("queues");
    let actual_queues: BTreeMap<String, Value> = queues
        .iter()
        .map(|q| {
            let name = q["name"].as_str().expect("queue name").to_owned();
            assert_eq!(q["vhost"], "/", "{name}: vhost");
            assert_eq!(q["durable"], true, "{name}: durable");
            assert_eq!(q["auto_delete"], false, "{name}: auto_delete");
            (name, q["arguments"].clone())
        })
        .collect();
    assert_eq!(queues.len(), actual_queues.len(), "a queue is listed twice");
    // Same names and, per queue, the same arguments with the same JSON types (a string
    // "10" where the code sends a number would make the broker refuse thumbd's declare).
    assert_eq!(actual_queues, expected_queues);

    let exchanges: BTreeSet<(String, String, bool, String)> = defs["exchanges"]
        .as_array()
        .expect("exchanges")
        .iter()
        .map(|e| {
            assert_eq!(e["arguments"], json!({}), "exchange arguments");
            (
                e["name"].as_str().expect("name").to_owned(),
                e["type"].as_str().expect("type").to_owned(),
                e["durable"] == true && e["auto_delete"] == false,
                e["vhost"].as_str().expect("vhost").to_owned(),
            )
        })
        .collect();
    let expected_exchanges: BTreeSet<_> = topologies
        .iter()
        .flat_map(|t| [&t.exchange, &t.dead_letter_exchange])
        .map(|n| (n.clone(), "direct".to_owned(), true, "/".to_owned()))
        .collect();
    assert_eq!(exchanges, expected_exchanges);

    let bindings: BTreeSet<(String, String, String, String)> = defs["bindings"]
        .as_array()
        .expect("bindings")
        .iter()
        .map(|b| {
            assert_eq!(b["vhost"], "/", "binding vhost");
            (
                b["source"].as_str().expect("source").to_owned(),
                b["destination"].as_str().expect("destination").to_owned(),
                b["destination_type"].as_str().expect("type").to_owned(),
                b["routing_key"].as_str().expect("routing key").to_owned(),
            )
        })
        .collect();
    let binding = |source: &str, queue: &str| {
        (
            source.to_owned(),
            queue.to_owned(),
            "queue".to_owned(),
            ROUTING_KEY.to_owned(),
        )
    };
    let expected_bindings: BTreeSet<_> = topologies
        .iter()
        .flat_map(|t| {
            [
                binding(&t.exchange, &t.queue),
                binding(&t.dead_letter_exchange, &t.dead_letter_queue),
            ]
        })
        .collect();
    assert_eq!(bindings, expected_bindings);

    let vhosts: Vec<&str> = defs["vhosts"]
        .as_array()
        .expect("vhosts")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(vhosts, ["/"]);
    // Definitions loaded at boot replace the default user: the user thumbd connects as
    // (compose.yaml's THUMBD_AMQP_URL) must be defined, with permissions on `/`.
    let users: Vec<&str> = defs["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    let permitted: Vec<&str> = defs["permissions"]
        .as_array()
        .expect("permissions")
        .iter()
        .filter(|p| p["vhost"] == "/")
        .filter_map(|p| p["user"].as_str())
        .collect();
    let compose = &yaml_docs("compose.yaml")[0];
    let api_env = env_of(&compose["services"]["api-1"]);
    let amqp_url = str_of(&api_env["THUMBD_AMQP_URL"], "THUMBD_AMQP_URL");
    let user = amqp_url
        .strip_prefix("amqp://")
        .and_then(|u| u.split_once(':'))
        .expect("amqp://user:pass@…")
        .0;
    assert!(users.contains(&user), "user {user} not in definitions");
    assert!(permitted.contains(&user), "user {user} has no permissions");
}

#[test]
fn deploy_names_only_real_thumbd_variables() {
    let real = real_vars();
    let mut files = Vec::new();
    files_under(&deploy_dir(), &mut files);
    let mut seen = BTreeSet::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for var in thumbd_vars(&text) {
            // local-cluster.sh's own inputs: the binary to run and the test services'
            // URLs (DEVELOPERS.md), not settings.
            if var == "THUMBD_BIN" || var.starts_with("THUMBD_TEST_") {
                continue;
            }
            assert!(
                real.contains(&var),
                "{}: {var} is not a thumbd setting (thumbd --help)",
                file.display()
            );
            seen.insert(var);
        }
    }
    for needed in [
        "THUMBD_AMQP_URL",
        "THUMBD_DATABASE_URL",
        "THUMBD_STORAGE_URL",
        "THUMBD_JWT_SECRET",
        "THUMBD_LISTEN",
    ] {
        assert!(seen.contains(needed), "deploy/ never sets {needed}");
    }
}

#[test]
fn config_example_has_every_setting_with_its_default() {
    let settings = settings();
    let text = read("config.example.toml");
    let active: toml::Table = text.parse().expect("config.example.toml is valid TOML");

    // `key = value` lines, commented out or not; uncommenting them must still be TOML.
    let mut keys = Vec::new();
    let mut uncommented = String::new();
    for line in text.lines() {
        let body = line.trim_start_matches('#').trim();
        let Some((key, _)) = body.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            keys.push(key.to_owned());
            uncommented.push_str(body);
            uncommented.push('\n');
        }
    }
    let all: toml::Table = uncommented
        .parse()
        .expect("the commented-out settings are valid TOML once uncommented");
    assert_eq!(all.len(), keys.len(), "a setting is listed twice");

    let real: BTreeSet<&str> = settings.iter().map(|s| s.key.as_str()).collect();
    let listed: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    assert_eq!(listed, real, "config.example.toml vs thumbd --help");

    for s in &settings {
        assert!(
            text.contains(&format!("Env {}, default {}.", s.var, s.default)),
            "{}: comment should say `Env {}, default {}.`",
            s.key,
            s.var,
            s.default
        );
        match active.get(&s.key) {
            None => assert_eq!(s.default, "unset", "{} has a default: set it", s.key),
            Some(value) => {
                let shown = match value {
                    toml::Value::String(v) => v.clone(),
                    toml::Value::Integer(v) => v.to_string(),
                    toml::Value::Boolean(v) => v.to_string(),
                    other => panic!("{}: unexpected {other:?}", s.key),
                };
                assert_eq!(shown, s.default, "{}: not the default", s.key);
            }
        }
    }

    // thumbd itself accepts the file (every value parses).
    let data_dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_thumbd"))
        .args(["migrate", "--config"])
        .arg(deploy_dir().join("config.example.toml"))
        .arg("--set")
        .arg(format!("data_dir={}", data_dir.path().display()))
        .env_clear()
        .output()
        .expect("run thumbd migrate");
    assert!(
        out.status.success(),
        "thumbd refuses config.example.toml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A compose service's `environment`, as a map or as a `KEY=value` list.
fn env_of(service: &Yaml) -> BTreeMap<String, Yaml> {
    match &service["environment"] {
        Yaml::Hash(h) => h
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone())))
            .collect(),
        Yaml::Array(list) => list
            .iter()
            .filter_map(|kv| kv.as_str()?.split_once('='))
            .map(|(k, v)| (k.to_owned(), Yaml::String(v.to_owned())))
            .collect(),
        _ => BTreeMap::new(),
    }
}

#[test]
fn compose_runs_apis_and_workers_wired_to_the_services() {
    let compose = &yaml_docs("compose.yaml")[0];
    let services = compose["services"].as_hash().expect("services");
    let mut counts = BTreeMap::new();
    for (name, service) in services {
        let name = str_of(name, "service name");
        let command = strings(&service["command"]);
        let role = ["api", "worker"]
            .into_iter()
            .find(|role| name.starts_with(role));
        let Some(role) = role else {
            assert!(
                !command.iter().any(|c| c == "api" || c == "worker"),
                "{name} runs {command:?} but is not named api-… or worker-…"
            );
            continue;
        };
        *counts.entry(role).or_insert(0) += 1;
        assert_eq!(command, [role], "{name}: command");
        assert_eq!(str_of(&service["build"]["context"], "context"), "..");
        assert_eq!(
            str_of(&service["build"]["dockerfile"], "dockerfile"),
            "deploy/Dockerfile"
        );

        let env = env_of(service);
        for var in [
            "THUMBD_AMQP_URL",
            "THUMBD_DATABASE_URL",
            "THUMBD_STORAGE_URL",
            "THUMBD_JWT_SECRET",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            assert!(env.contains_key(var), "{name}: {var} not set");
        }
        let listen = port_of(str_of(&env["THUMBD_LISTEN"], "THUMBD_LISTEN"));
        let check = strings(&service["healthcheck"]["test"]).join(" ");
        let (port, path) = url_port_and_path(&check);
        assert_eq!(port, listen, "{name}: healthcheck port");
        assert!(PROBE_PATHS.contains(&path.as_str()), "{name}: probe {path}");
        for mapping in strings(&service["ports"]) {
            let container = mapping.rsplit(':').next().expect("port");
            assert_eq!(container, listen.to_string(), "{name}: published port");
        }
        let deps = service["depends_on"].as_hash().expect("depends_on");
        for (dep, how) in deps {
            let dep = str_of(dep, "dependency");
            let condition = str_of(&how["condition"], "condition");
            assert!(
                services.contains_key(&Yaml::String(dep.into())),
                "{name}: depends on unknown {dep}"
            );
            assert!(
                condition.starts_with("service_"),
                "{name}: {dep}: {condition}"
            );
        }
        for dep in ["rabbitmq", "postgres"] {
            assert_eq!(
                deps.get(&Yaml::String(dep.into())).map(|d| &d["condition"]),
                Some(&Yaml::String("service_healthy".into())),
                "{name}: waits for {dep} healthy"
            );
        }
    }
    assert!(
        counts.get("api") >= Some(&2) && counts.get("worker") >= Some(&2),
        "two api and two worker services: {counts:?}"
    );

    let rabbitmq = &services[&Yaml::String("rabbitmq".into())];
    assert!(str_of(&rabbitmq["image"], "image").starts_with("rabbitmq:3.13-management"));
    let volumes = strings(&rabbitmq["volumes"]);
    assert!(
        volumes
            .iter()
            .any(|v| v.starts_with("./rabbitmq/definitions.json:/etc/rabbitmq/")),
        "rabbitmq loads definitions.json: {volumes:?}"
    );
    let conf = read("rabbitmq/rabbitmq.conf");
    assert!(
        conf.lines()
            .any(|l| l.trim() == "load_definitions = /etc/rabbitmq/definitions.json"),
        "rabbitmq.conf loads the definitions"
    );
}

/// Documents of every `deploy/k8s/*.yaml`, keyed by (kind, name).
fn kubernetes() -> BTreeMap<(String, String), Yaml> {
    let mut files = Vec::new();
    files_under(&deploy_dir().join("k8s"), &mut files);
    let mut objects = BTreeMap::new();
    for file in files
        .iter()
        .filter(|f| f.extension() == Some("yaml".as_ref()))
    {
        let rel = file.strip_prefix(deploy_dir()).expect("under deploy");
        for doc in yaml_docs(rel.to_str().expect("utf-8 path")) {
            let kind = str_of(&doc["kind"], "kind").to_owned();
            let name = str_of(&doc["metadata"]["name"], "metadata.name").to_owned();
            assert!(
                objects.insert((kind.clone(), name.clone()), doc).is_none(),
                "{kind} {name} defined twice"
            );
        }
    }
    objects
}

fn get<'a>(objects: &'a BTreeMap<(String, String), Yaml>, kind: &str, name: &str) -> &'a Yaml {
    objects
        .get(&(kind.to_owned(), name.to_owned()))
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/k8s"))
}

/// `256Mi`, `1Gi` → MiB.
fn mebibytes(quantity: &str) -> i64 {
    let (number, factor) = if let Some(n) = quantity.strip_suffix("Gi") {
        (n, 1024)
    } else if let Some(n) = quantity.strip_suffix("Mi") {
        (n, 1)
    } else {
        panic!("memory {quantity:?}: use Mi or Gi")
    };
    number.parse::<i64>().expect("whole number") * factor
}

#[test]
fn kubernetes_manifests_agree_with_the_binary() {
    let objects = kubernetes();
    let config = get(&objects, "ConfigMap", "thumbd");
    let secret = get(&objects, "Secret", "thumbd");
    let listen = port_of(str_of(&config["data"]["THUMBD_LISTEN"], "THUMBD_LISTEN"));

    for (name, role) in [("thumbd-api", "api"), ("thumbd-worker", "worker")] {
        let deployment = get(&objects, "Deployment", name);
        let spec = &deployment["spec"]["template"]["spec"];
        let labels = &deployment["spec"]["template"]["metadata"]["labels"];
        assert_eq!(
            deployment["spec"]["selector"]["matchLabels"]
                .as_hash()
                .expect("matchLabels")
                .iter()
                .find(|(k, v)| labels[str_of(k, "label")] != **v),
            None,
            "{name}: selector matches the pod labels"
        );
        let containers = spec["containers"].as_vec().expect("containers");
        assert_eq!(containers.len(), 1, "{name}: one container");
        let c = &containers[0];
        assert_eq!(strings(&c["args"]), [role], "{name}: args");
        assert!(
            c["command"].is_badvalue(),
            "{name}: keep the image's ENTRYPOINT"
        );
        let ports: Vec<i64> = c["ports"]
            .as_vec()
            .expect("ports")
            .iter()
            .filter_map(|p| p["containerPort"].as_i64())
            .collect();
        assert_eq!(
            ports,
            [listen],
            "{name}: containerPort = THUMBD_LISTEN port"
        );
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            let get = &c[probe]["httpGet"];
            assert_eq!(str_of(&get["path"], probe), path, "{name}: {probe}");
            assert_eq!(get["port"].as_i64(), Some(listen), "{name}: {probe} port");
        }
        let from: BTreeSet<(&str, &str)> = c["envFrom"]
            .as_vec()
            .expect("envFrom")
            .iter()
            .map(|e| {
                if e["configMapRef"].is_badvalue() {
                    ("Secret", str_of(&e["secretRef"]["name"], "secretRef"))
                } else {
                    (
                        "ConfigMap",
                        str_of(&e["configMapRef"]["name"], "configMapRef"),
                    )
                }
            })
            .collect();
        assert_eq!(
            from,
            BTreeSet::from([("ConfigMap", "thumbd"), ("Secret", "thumbd")]),
            "{name}: envFrom"
        );
        let resources = &c["resources"];
        let limit = mebibytes(str_of(&resources["limits"]["memory"], "memory limit"));
        let request = mebibytes(str_of(&resources["requests"]["memory"], "memory request"));
        // benches/README.md: peak RSS up to 399 MiB with 64 concurrent 5 MB uploads.
        assert!(
            limit >= 512,
            "{name}: memory limit {limit} MiB below measured peak"
        );
        assert!(request <= limit, "{name}: request above limit");
        assert!(
            !resources["requests"]["cpu"].is_badvalue(),
            "{name}: cpu request"
        );
        let run_as = spec["securityContext"]["runAsUser"].as_i64();
        assert!(run_as.is_some_and(|u| u != 0), "{name}: runAsUser non-root");
        let grace = spec["terminationGracePeriodSeconds"]
            .as_i64()
            .expect("terminationGracePeriodSeconds");
        if role == "worker" {
            assert!(
                grace >= 30,
                "{name}: {grace} s is too short for jobs in flight"
            );
        } else {
            // Endpoints drop the pod during preStop, then requests drain (up to max_wait).
            let pre_stop = strings(&c["lifecycle"]["preStop"]["exec"]["command"]);
            assert_eq!(
                pre_stop.first().map(String::as_str),
                Some("sleep"),
                "{name}: preStop"
            );
            let pause: i64 = pre_stop[1].parse().expect("seconds");
            let max_wait: i64 = settings()
                .into_iter()
                .find(|s| s.key == "max_wait")
                .expect("max_wait")
                .default
                .parse()
                .unwrap();
            assert!(
                pause + max_wait < grace,
                "{name}: preStop {pause} s + max_wait {max_wait} s leave no room in {grace} s"
            );
        }
        let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(
            str_of(&annotations["prometheus.io/scrape"], "scrape annotation"),
            "true",
            "{name}"
        );
        assert_eq!(
            str_of(&annotations["prometheus.io/port"], "port annotation").parse::<i64>(),
            Ok(listen),
            "{name}: metrics on the listen port"
        );
        assert_eq!(
            str_of(&annotations["prometheus.io/path"], "path annotation"),
            "/metrics"
        );
    }

    let service = get(&objects, "Service", "thumbd-api");
    let targets: Vec<i64> = service["spec"]["ports"]
        .as_vec()
        .expect("ports")
        .iter()
        .filter_map(|p| p["targetPort"].as_i64())
        .collect();
    assert_eq!(targets, [listen], "Service targetPort");

    for name in ["thumbd-api", "thumbd-worker"] {
        let pdb = get(&objects, "PodDisruptionBudget", name);
        let pod_labels =
            &get(&objects, "Deployment", name)["spec"]["template"]["metadata"]["labels"];
        for (k, v) in pdb["spec"]["selector"]["matchLabels"]
            .as_hash()
            .expect("PDB matchLabels")
        {
            assert_eq!(
                &pod_labels[str_of(k, "label")],
                v,
                "PDB {name} selects its pods"
            );
        }
    }

    let scaled = get(&objects, "ScaledObject", "thumbd-worker");
    assert_eq!(
        str_of(&scaled["spec"]["scaleTargetRef"]["name"], "scaleTargetRef"),
        "thumbd-worker"
    );
    let triggers = scaled["spec"]["triggers"].as_vec().expect("triggers");
    assert_eq!(triggers.len(), 1);
    let trigger = &triggers[0];
    assert_eq!(str_of(&trigger["type"], "trigger type"), "rabbitmq");
    assert_eq!(str_of(&trigger["metadata"]["mode"], "mode"), "QueueLength");
    assert_eq!(
        str_of(&trigger["metadata"]["queueName"], "queueName"),
        Topology::new(&AmqpOptions::default()).queue
    );
    let auth = get(
        &objects,
        "TriggerAuthentication",
        str_of(&trigger["authenticationRef"]["name"], "authenticationRef"),
    );
    for target in auth["spec"]["secretTargetRef"]
        .as_vec()
        .expect("secretTargetRef")
    {
        assert_eq!(str_of(&target["name"], "secret name"), "thumbd");
        let key = str_of(&target["key"], "secret key");
        assert!(
            !secret["stringData"][key].is_badvalue(),
            "Secret thumbd has no {key} for KEDA"
        );
    }
}

/// Dockerfile instructions of the last stage, continuation lines joined: (INSTRUCTION, args).
fn dockerfile() -> (Vec<String>, Vec<(String, String)>) {
    let text = read("Dockerfile");
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    let mut froms = Vec::new();
    let mut last_stage = Vec::new();
    for instruction in joined {
        let (op, args) = instruction.split_once(' ').unwrap_or((&instruction, ""));
        let op = op.to_ascii_uppercase();
        if op == "FROM" {
            froms.push(args.trim().to_owned());
            last_stage.clear();
        }
        last_stage.push((op, args.trim().to_owned()));
    }
    (froms, last_stage)
}

#[test]
fn dockerfile_runs_thumbd_as_non_root_on_the_listen_port() {
    let (froms, stage) = dockerfile();
    assert!(froms.len() >= 2, "multi-stage build: {froms:?}");
    assert!(
        froms[0].starts_with("rust:1-bookworm"),
        "builder: {}",
        froms[0]
    );
    assert_eq!(
        froms.last().map(String::as_str),
        Some("debian:bookworm-slim")
    );
    let text = read("Dockerfile");
    assert!(text.contains("cargo build --release --locked --bin thumbd"));
    assert!(
        text.contains("strip --strip-debug /usr/local/bin/thumbd"),
        "the image ships the binary without its debug info"
    );

    let all = |op: &str| -> Vec<&str> {
        stage
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, a)| a.as_str())
            .collect()
    };
    let exec_form = |op: &str| -> Vec<String> {
        let args = all(op);
        assert_eq!(args.len(), 1, "one {op}");
        serde_json::from_str(args[0]).unwrap_or_else(|e| panic!("{op} in JSON form: {e}"))
    };
    assert_eq!(exec_form("ENTRYPOINT"), ["thumbd"]);
    assert_eq!(exec_form("CMD"), ["serve"]);

    let user = all("USER");
    let user = user.last().expect("USER in the runtime stage");
    let uid = user.split(':').next().unwrap_or_default();
    assert!(!["root", "0", ""].contains(&uid), "runs as {user}");

    let env: BTreeMap<&str, &str> = all("ENV")
        .iter()
        .flat_map(|args| args.split_whitespace())
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let listen = port_of(env.get("THUMBD_LISTEN").expect("ENV THUMBD_LISTEN"));
    let exposed: Vec<i64> = all("EXPOSE")
        .iter()
        .flat_map(|a| a.split_whitespace())
        .filter_map(|p| p.trim_end_matches("/tcp").parse().ok())
        .collect();
    assert_eq!(exposed, [listen], "EXPOSE = THUMBD_LISTEN port");

    let health = all("HEALTHCHECK");
    let health = health.first().expect("HEALTHCHECK");
    let (port, path) = url_port_and_path(health);
    assert_eq!(port, listen, "HEALTHCHECK port");
    assert_eq!(path, "/healthz", "HEALTHCHECK path");

    let data_dir = env.get("THUMBD_DATA_DIR").expect("ENV THUMBD_DATA_DIR");
    assert!(
        all("VOLUME").iter().any(|v| v.contains(data_dir)),
        "the data dir {data_dir} is a VOLUME"
    );

    let ignore = read("Dockerfile.dockerignore");
    let patterns: BTreeSet<&str> = ignore.lines().map(str::trim).collect();
    assert!(patterns.contains("target") && patterns.contains(".git"));
}
