//! Integration tests: the real server on port 0 over HTTP, each test on a fresh database (an SQLite
//! file, or a PostgreSQL schema with `KEYCARD_TEST_DATABASE=postgres`; see `helpers`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod account;
mod admin;
mod attacks;
mod cli;
mod config_check;
mod connections;
mod cookies;
mod faults;
mod health;
mod helpers;
mod import;
mod login;
mod logout;
mod metrics;
mod multi_instance;
mod oidc_issuer;
mod openapi;
mod process;
mod protected;
mod proxy;
mod refresh;
mod register;
mod resource_server;
mod signing_keys;
mod ssf;
mod storage_full;
