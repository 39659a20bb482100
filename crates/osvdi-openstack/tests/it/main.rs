//! Integration tests against a real OpenStack (the project's test bed,
//! `scripts/openstack-testbed/osbed.sh`): run only when `OS_AUTH_URL` is set.

mod cloud;
