#!/usr/bin/env bash
# nightly backup of the Phoenix guests
BORG_PASSPHRASE="b0rg-N1ghtly-Pass"
export BORG_PASSPHRASE
export RESTIC_PASSWORD=R3st1c-Phx-Backup
RESTIC_PASSWORD_FILE=/etc/restic/pw
smbclient //nas/backup -U backup%Smb-Cl13nt-Pw -c "put x"
lftp -u backup,Ftp-B4ckup-Pw sftp://nas.lan
ftp_password=Ftp-B4ckup-Pw
mail_pass="M4il-Al3rt-Pw"
TELEGRAM_BOT_TOKEN=123456789:AAH9f8e7d6c5b4a3Z2y1X0w9V8u7T6s5R4q
vzdump 101 --storage backup --mode snapshot
HEALTHCHECK_URL=https://hc.lan/ping/0a1b2c3d
PBS_PASSWORD=Pb5-Backup-S3rver
PBS_FINGERPRINT=aa:bb:cc:dd:ee:ff
proxmox-backup-client backup root.pxar:/ --repository backup@pbs@pbs.lan:store1
