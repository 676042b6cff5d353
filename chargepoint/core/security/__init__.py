"""Security: certificates and keys, the security log, security and network profiles."""
