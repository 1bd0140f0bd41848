#!/bin/sh
CT_ROOT_PW="Ct-R00t-Pw-101"
pct exec 101 -- sh -c "echo root:$CT_ROOT_PW | chpasswd"
pct create 102 local:vztmpl/debian.tar.zst --password "Lxc-Cr3ate-Pw!"
pct create 103 local:vztmpl/debian.tar.zst --password "$LXC_PASSWORD"
git clone https://oauth2:glpat-XyZ123AbC456DeF789Gh@gitlab.lan/infra/phoenix.git
git clone https://gitlab.lan/infra/phoenix.git
NEXTCLOUD_ADMIN_PASSWORD=N3xtcl0ud-Adm
# password: do not put it here
echo "Set the password with: phx-hook vault set nextcloud/admin"
api_key="0000"
CLOUDFLARE_API_TOKEN=cf_Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4
allowed_password="hunter2" # phx-hook: allow
