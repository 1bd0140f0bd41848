#!/bin/bash
# Phoenix file server: Samba share for the NAS
set -euo pipefail

setup_samba() {
    local smb_password="Ph0enix-Smb!2024"
    local smb_user="phoenix"
    echo -e "Ph0enix-Smb!2024\nPh0enix-Smb!2024" | smbpasswd -s -a "$smb_user"
    printf '%s\n%s\n' "$SMB_PASSWORD" "$SMB_PASSWORD" | smbpasswd -s -a "$smb_user"
    local smb_password_file="/etc/samba/phoenix.secret"
}
ADMIN_PASSWORD="Adm1n-Phx-77x"
export ROOT_PASSWORD=Tr0ub4dor3
DB_PASSWORD="$DB_PASSWORD"
DB_PASSWORD="${DB_PASSWORD:?missing}"
API_TOKEN=$(cat /run/secrets/api_token)
echo "root:Hyp3rv1sor!" | chpasswd
echo "$USER:$NEWPASS" | chpasswd
mysql -u root -pS3cr3tDB! -e "CREATE DATABASE app"
mysql -u root -p"$MYSQL_ROOT_PASSWORD" -e "SHOW DATABASES"
PGPASSWORD=pgS3cret9 psql -h db -U app
pveum user add deploy@pve --password "D3pl0y-Pve!"
pveum user add ci@pve --password "$CI_PASSWORD"
curl -u admin:Grafana-9x! https://grafana.lan/api/health
curl -u "$GRAFANA_USER:$GRAFANA_PASS" https://grafana.lan/api/health
sshpass -p R3m0teP4ss ssh backup@nas
passwordless_sudo=true
PASSWORD_MIN_LENGTH=12
token_url="https://auth.example.org/token"
ssh_key_path=/root/.ssh/id_ed25519
keyboard_layout=de
author="Phoenix Team"
SECRET_NAME=foo-ref
local password_prompt="Enter the password: "
BACKUP_PASSPHRASE="correct-horse-battery-staple-42"
export GITHUB_TOKEN=ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5
DEPLOY_KEY_ID=12345
wget --password=W9etP4ss -O /tmp/x https://mirror.lan/x
rsync --password-file=/etc/rsync.secret src/ dst/
AUTH_TOKEN="${AUTH_TOKEN:-}"
CHANGEME_PW=changeme
admin_pass="changeme"
secret=$(openssl rand -hex 32)
echo "done"
