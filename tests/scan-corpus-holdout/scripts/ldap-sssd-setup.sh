#!/usr/bin/env bash
set -uo pipefail

### ======== TUNABLES ========
LDAP_DOMAIN="${LDAP_DOMAIN:-lab.local}"          # your DNS domain
LDAP_ORG="${LDAP_ORG:-Lab}"                      # org/Company
LDAP_BASE_DN="${LDAP_BASE_DN:-dc=lab,dc=local}"  # base DN (must match LDAP_DOMAIN)
LDAP_ADMIN_PASS="${LDAP_ADMIN_PASS:-ibhh771}"    # admin password (cn=admin,$BASE_DN)

# Service/bind (read-only) account for clients (SSSD)
BIND_DN_CN="${BIND_DN_CN:-sssd}"
BIND_PASS="${BIND_PASS:-ibhh771}"

# Optional: UFW enable?
ENABLE_UFW="${ENABLE_UFW:-1}"

### ======== HELPERS ========
need_root() { [[ $EUID -eq 0 ]] || { echo "Run as root"; exit 1; }; }
msg() { echo -e "[$(date +%H:%M:%S)] $*"; }
