"""The web console: server-rendered rooms for the press office, reviewers, channel admins, auditors."""
