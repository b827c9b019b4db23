//! One module per resource; handlers only parse, authorize, call the backends and answer.

pub mod health;
pub mod status;
pub mod thumbnails;
