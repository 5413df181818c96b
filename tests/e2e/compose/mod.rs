//! Compose files run by sandbox, checked against the machine's `docker-compose`: the same file
//! brought up by both must give containers (networks, volumes) that `docker inspect` agrees on,
//! field by field. `parity` is the harness; each other module covers one family of keys.

mod container;
mod health;
mod loading;
mod networks;
pub mod parity;
mod project;
mod secrets;
mod storage;
