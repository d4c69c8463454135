"""The hostile-tenant suite: each test plays a tenant attacking its neighbours (issue #14)
against the real stack and fails without the defence it proves."""
