//! Reading and writing the message headers thumbd relies on.

use lapin::types::{AMQPValue, FieldTable};

/// Set by quorum queues on redelivery: how many earlier deliveries were returned.
pub const DELIVERY_COUNT: &str = "x-delivery-count";
/// Set by thumbd on a retried or dead-lettered message: deliveries before this copy was
/// published (a retry's own delivery not counted).
pub const THUMBD_DELIVERIES: &str = "x-thumbd-deliveries";
/// Set by thumbd on a retried message: retries before this copy, this one included.
pub const THUMBD_RETRIES: &str = "x-thumbd-retries";
/// Set by thumbd on a dead-lettered message: why.
pub const THUMBD_REASON: &str = "x-thumbd-reason";

/// A numeric header as `u32` (RabbitMQ sends `x-delivery-count` as a signed long long).
pub fn count(headers: Option<&FieldTable>, name: &str) -> u32 {
    let Some(value) = headers.and_then(|h| h.inner().get(name)) else {
        return 0;
    };
    let n: i128 = match value {
        AMQPValue::ShortShortInt(v) => (*v).into(),
        AMQPValue::ShortShortUInt(v) => (*v).into(),
        AMQPValue::ShortInt(v) => (*v).into(),
        AMQPValue::ShortUInt(v) => (*v).into(),
        AMQPValue::LongInt(v) => (*v).into(),
        AMQPValue::LongUInt(v) => (*v).into(),
        AMQPValue::LongLongInt(v) => (*v).into(),
        _ => 0,
    };
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// The delivery number of a delivery carrying `headers` (1 = first).
pub fn deliveries(headers: Option<&FieldTable>) -> u32 {
    count(headers, THUMBD_DELIVERIES)
        .saturating_add(count(headers, DELIVERY_COUNT))
        .saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up() {
        assert_eq!(deliveries(None), 1);
        let mut h = FieldTable::default();
        h.insert(DELIVERY_COUNT.into(), AMQPValue::LongLongInt(2));
        assert_eq!(deliveries(Some(&h)), 3);
        h.insert(THUMBD_DELIVERIES.into(), AMQPValue::LongUInt(4));
        assert_eq!(deliveries(Some(&h)), 7);
        h.insert(DELIVERY_COUNT.into(), AMQPValue::LongLongInt(-5));
        assert_eq!(deliveries(Some(&h)), 5, "negative counts are ignored");
    }
}
