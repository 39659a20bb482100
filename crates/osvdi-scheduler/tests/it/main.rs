//! Integration tests of osvdi-scheduler: scenario tables with snapshots, properties, and the
//! simulator's report.

mod oracle;
mod props;
mod scenarios;
mod sim;
mod table;
