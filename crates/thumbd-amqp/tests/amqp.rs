//! The RabbitMQ queue against a real broker (THUMBD_TEST_AMQP_URL, default the local one).
//! Each test uses its own namespace (exchange and queues) and deletes it at the end.

use std::time::{Duration, Instant};

use thumbd_amqp::{AmqpJobQueue, AmqpOptions};
use thumbd_jobs::{
    Environment, Error, JobMessage, JobQueue, JobSource, ThumbnailId, conformance, services,
};

const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn options(test: &str) -> AmqpOptions {
    AmqpOptions {
        namespace: format!(
            "thumbd-test-{test}-{}",
            thumbd_jobs::JobId::new().to_string().replace('-', "")
        ),
        ..AmqpOptions::default()
    }
}

async fn queue(test: &str, options: AmqpOptions) -> Option<AmqpJobQueue> {
    let url = services::service_url("THUMBD_TEST_AMQP_URL", DEFAULT_URL, test)?;
    let queue = AmqpJobQueue::new(&url, options).unwrap();
    queue.connect().await.expect("connect and declare");
    Some(queue)
}

fn message(id: &str) -> JobMessage {
    JobMessage {
        tenant: thumbd_jobs::Tenant::default(),
        job_id: None,
        environment: Environment::Development,
        thumbnail_id: ThumbnailId::parse(id).unwrap(),
        source: JobSource::Url {
            url: "https://example.invalid/x.png".into(),
        },
        reply_to: None,
        profile: None,
    }
}

#[tokio::test]
async fn conformance_job_queue() {
    let Some(queue) = queue("conformance", options("conformance")).await else {
        return;
    };
    conformance::job_queue(&queue).await;
    queue.delete_topology().await.unwrap();
}

#[tokio::test]
async fn a_lost_connection_gives_the_message_back() {
    let options = options("lost");
    let Some(first) = queue("lost", options.clone()).await else {
        return;
    };
    first.push(&message("lost")).await.unwrap();
    let lease = first
        .lease(Duration::from_secs(5))
        .await
        .unwrap()
        .expect("delivered");
    assert_eq!(lease.deliveries, 1);
    first.close().await; // as a killed worker's connection would
    assert!(
        !first.ack(&lease).await.unwrap(),
        "a lease from a closed connection cannot ack"
    );

    let second = AmqpJobQueue::new(DEFAULT_URL, options).unwrap();
    let again = second
        .lease(Duration::from_secs(5))
        .await
        .unwrap()
        .expect("delivered again");
    assert_eq!(again.payload, lease.payload);
    assert_eq!(again.deliveries, 2, "the broker counted the first delivery");
    assert!(second.ack(&again).await.unwrap());
    assert_eq!(second.depth().await.unwrap().ready, 0);
    second.delete_topology().await.unwrap();
}

#[tokio::test]
async fn the_broker_dead_letters_past_the_delivery_limit() {
    let options = AmqpOptions {
        delivery_limit: 2,
        ..options("limit")
    };
    let Some(producer) = queue("limit", options.clone()).await else {
        return;
    };
    producer.push(&message("poison")).await.unwrap();
    // Three consumers in turn die holding it: deliveries 1, 2, 3 > limit 2.
    for expected in 1..=3 {
        let consumer = AmqpJobQueue::new(DEFAULT_URL, options.clone()).unwrap();
        let lease = consumer
            .lease(Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("delivery {expected}"));
        assert_eq!(lease.deliveries, expected);
        consumer.close().await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let depth = producer.depth().await.unwrap();
        if depth.dead == 1 {
            assert_eq!(depth.ready, 0);
            break;
        }
        assert!(Instant::now() < deadline, "not dead-lettered: {depth:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    producer.delete_topology().await.unwrap();
}

#[tokio::test]
async fn a_broker_that_is_down_is_unavailable_not_a_hang() {
    // Only needs the loopback interface: nothing listens on port 1.
    let queue = AmqpJobQueue::new("amqp://guest:guest@127.0.0.1:1/%2f", options("down")).unwrap();
    let started = Instant::now();
    let err = queue.push(&message("x")).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(!err.to_string().contains("guest:guest"), "{err}");
}
