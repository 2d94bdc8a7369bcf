//! Black-box tests: the real server on a random loopback port, a fresh SQLite file per test.

mod account;
mod admin;
mod browser;
mod cli;
mod fixtures;
mod hardening;
mod helpers;
mod mock;
mod portal;
mod regressions;
mod vectors;
mod webhook;
