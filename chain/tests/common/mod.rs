#![allow(dead_code)]
pub mod shape;
