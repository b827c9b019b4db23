//! One module per resource; handlers only parse, authorize, call the backends and answer.

pub mod contexts;
pub mod health;
pub mod listing;
pub mod status;
pub mod thumbnails;
pub mod uploads;
pub mod webhooks;
