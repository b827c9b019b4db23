//! `Role`: what a process does (`serve`, `api`, `worker`), which decides what it may run on.

/// What a process does, which decides what it may run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// API and workers in one process: any backends.
    Serve,
    /// API only: needs a queue other processes can consume (RabbitMQ).
    Api,
    /// Workers only: needs a queue other processes publish to (RabbitMQ).
    Worker,
}

impl Role {
    /// The subcommand that runs it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Serve => "serve",
            Role::Api => "api",
            Role::Worker => "worker",
        }
    }
}
