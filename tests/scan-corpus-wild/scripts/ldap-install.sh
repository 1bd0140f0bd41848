#!/bin/sh
debconf-set-selections <<EOF
slapd slapd/password1 password vqxnco
slapd slapd/internal/adminpw password vqxnco
slapd slapd/password2 password vqxnco
slapd slapd/internal/generated_adminpw password vqxnco
slapd slapd/domain string andrew.cmu.edu
slapd shared/organization string andrew.cmu.edu
EOF
DEBIAN_FRONTEND=noninteractive apt-get install -y slapd ldap-utils
ldapadd -x -D cn=admin,dc=andrew,dc=cmu,dc=edu -w vqxnco -f /vagrant/ldap/dit.ldif
