//! The condition language's integration tests: one binary, a module per area
//! (vectors from docs/conditions.md, error positions, the JSON form, property-based round
//! trips, `ignoring case`, hints and warnings). Tests unwrap freely: a panic is a failed test.

mod errors;
mod hints;
mod ignore_case;
mod json_form;
mod round_trip;
mod schema;
mod text_form;
mod vectors;
mod warnings;
