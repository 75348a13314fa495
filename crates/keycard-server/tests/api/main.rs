//! Integration tests: the real server on port 0, a fresh SQLite file each, over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod account;
mod admin;
mod attacks;
mod cli;
mod health;
mod helpers;
mod login;
mod logout;
mod protected;
mod refresh;
mod register;
