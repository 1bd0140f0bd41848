#!/bin/bash
set -e

echo "🔧 Installing Authentik on Ubuntu 22.04..."

# Update system and install dependencies
apt update && apt install -y \
  curl ca-certificates software-properties-common apt-transport-https gnupg lsb-release openssl \
  ufw fail2ban

# Install Docker
if ! command -v docker >/dev/null; then
  echo "🐳 Installing Docker..."
  curl -fsSL https://get.docker.com -o get-docker.sh
  sh get-docker.sh
  rm get-docker.sh
fi

# Generate secret key
SECRET_KEY=$(openssl rand -hex 32)

# Setup directories
mkdir -p /opt/authentik/{postgresql,media,templates}
cd /opt/authentik

# Create docker-compose.yml
echo "📝 Writing docker-compose.yml..."
cat > docker-compose.yml <<EOF
version: "3.4"

services:
  redis:
    image: redis:alpine
    restart: unless-stopped

  postgresql:
    image: postgres:13
    restart: unless-stopped
    environment:
      POSTGRES_PASSWORD: tigfoshbtjoeajdoa
      POSTGRES_USER: authentik
      POSTGRES_DB: authentik
    volumes:
      - ./postgresql:/var/lib/postgresql/data

  authentik-server:
    image: ghcr.io/goauthentik/server:latest
    restart: unless-stopped
    depends_on:
      - postgresql
      - redis
    environment:
      AUTHENTIK_SECRET_KEY: ${SECRET_KEY}
      AUTHENTIK_REDIS__HOST: redis
      AUTHENTIK_POSTGRESQL__HOST: postgresql
      AUTHENTIK_POSTGRESQL__USER: authentik
      AUTHENTIK_POSTGRESQL__PASSWORD: tigfoshbtjoeajdoa
      AUTHENTIK_POSTGRESQL__NAME: authentik
    volumes:
      - ./media:/media
      - ./templates:/templates
    ports:
      - "9000:9000"

  authentik-worker:
    image: ghcr.io/goauthentik/server:latest
    restart: unless-stopped
    depends_on:
      - authentik-server
    environment:
      AUTHENTIK_SECRET_KEY: ${SECRET_KEY}
      AUTHENTIK_REDIS__HOST: redis
      AUTHENTIK_POSTGRESQL__HOST: postgresql
      AUTHENTIK_POSTGRESQL__USER: authentik
      AUTHENTIK_POSTGRESQL__PASSWORD: tigfoshbtjoeajdoa
      AUTHENTIK_POSTGRESQL__NAME: authentik
    volumes:
      - ./media:/media
      - ./templates:/templates
EOF

# Launch containers
echo "🚀 Starting Authentik..."
docker-compose up -d

echo
echo "✅ Authentik is running on port 9000 (via Tailscale)."
echo "➡️  Access setup: http://<tailscale-ip>:9000/if/flow/initial-setup/"
