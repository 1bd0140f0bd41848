#!/bin/sh
# Registry logins, webhooks, Proxmox and database clients: each form, then a near miss.
docker login -u ci -p Dk7rQ2vLx9pW registry.lan
docker login -u ci --password-stdin registry.lan < /run/secrets/reg
podman login --username ci --password Pm4sK8wQ1zXc quay.io
podman login --username ci --password "$REG_PASSWORD" quay.io
helm repo add corp https://charts.lan --username ci --password Hm2vB6nQ9sLr
helm repo add corp https://charts.lan --pass-credentials
argocd repo add https://git.lan/x --registry-password Ag5tY3pW8mKd
argocd repo add https://git.lan/x --registry-password-file /run/secrets/reg
SLACK_WEBHOOK=https://hooks.slack.com/services/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
SLACK_DOCS=https://api.slack.com/messaging/webhooks
curl -X POST -d @msg.json https://discord.com/api/webhooks/112233445566778899/aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9fG
curl -X POST -d @msg.json "$DISCORD_WEBHOOK_URL"
TEAMS_URL=https://contoso.webhook.office.com/webhookb2/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9@aabbccdd/IncomingWebhook/1f2e3d4c5b6a79880716253443526170/9f8e7d6c
TEAMS_URL=https://contoso.webhook.office.com/webhookb2/${TEAMS_TOKEN}
BUILD_HOOK=https://ci.lan/hooks/build/7f3a9c2e8b1d4f6a0c5e7b9d2f4a6c8e
BUILD_HOOK_DOCS=https://ci.lan/hooks/build/
pveum user add ci@pve --password Pv3eUm7sQ2wL
pveum user add ci@pve --password
PGPASSWORD=Pg8sW2qLx5vB psql -h db -U app -c 'select 1'
PGPASSWORD="$DB_PASSWORD" psql -h db -U app
MYSQL_PWD=My6sQ1pWz8kD mysqldump app > app.sql
MYSQL_PWD_FILE=/run/secrets/mysql mysqldump app > app.sql
openssl pkcs12 -export -in a.crt -inkey a.key -passout pass:Os9lP3qW7eRt -out a.p12
openssl pkcs12 -export -in a.crt -inkey a.key -passout env:P12_PASS -out a.p12
htpasswd -bc /etc/nginx/.htpasswd admin Ht5pW2dQ8sLx
htpasswd -c /etc/nginx/.htpasswd admin
smbclient //nas/backup -U backup%Sm8bC3lW5qZx -c ls
smbclient //nas/backup -U "backup%${SMB_PASSWORD}" -c ls
sudo mount -t cifs //nas/x /mnt -o username=bk,password=Mn2tC7fS4wQx,vers=3.0
sudo mount -t cifs //nas/x /mnt -o credentials=/root/.smbcredentials,vers=3.0
ipmitool -I lanplus -H 10.0.0.9 -U admin -P Ip4mT8lQ2wZx chassis power status
ipmitool -I lanplus -H 10.0.0.9 -U admin -E chassis power status
curl -s -d '{"user":"admin","password":"'"$API_PW"'"}' https://pve.lan/api
