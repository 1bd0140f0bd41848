#!/bin/bash
set -e

# Railway configuration - use the actual Railway environment variables provided
export PGSSLMODE=disable

# Railway provides individual POSTGRES_* and REDIS_* variables directly
# Validate required Railway environment variables
if [ -z "$POSTGRES_HOST" ] || [ -z "$POSTGRES_PORT" ] || [ -z "$POSTGRES_USER" ] || [ -z "$POSTGRES_DB" ]; then
  echo "❌ ERROR: Railway PostgreSQL environment variables not set!"
  echo "   Required: POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_DB"
  echo "   Please ensure PostgreSQL database is attached to your Railway project."
  exit 1
fi

if [ -z "$REDIS_HOST" ] || [ -z "$REDIS_PORT" ]; then
  echo "❌ ERROR: Railway Redis environment variables not set!"
  echo "   Required: REDIS_HOST, REDIS_PORT"
  echo "   Please ensure Redis database is attached to your Railway project."
  exit 1
fi

# Set defaults for optional variables
export POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-""}
export REDIS_PASSWORD=${REDIS_HOST_PASSWORD:-""}  # Railway uses REDIS_HOST_PASSWORD
export DATABASE_URL="postgresql://$POSTGRES_USER:$POSTGRES_PASSWORD@$POSTGRES_HOST:$POSTGRES_PORT/$POSTGRES_DB"

export NEXTCLOUD_TRUSTED_DOMAINS=${NEXTCLOUD_TRUSTED_DOMAINS:-"nextcloud-railway-template-website.up.railway.app,localhost,::1,RAILWAY_PRIVATE_DOMAIN,RAILWAY_STATIC_URL"}
export NEXTCLOUD_ADMIN_USER=${NEXTCLOUD_ADMIN_USER:-"kikaiworksadmin"}
export NEXTCLOUD_ADMIN_PASSWORD=${NEXTCLOUD_ADMIN_PASSWORD:-"0664G@nsu!6770Z@"}
export NEXTCLOUD_UPDATE_CHECK=${NEXTCLOUD_UPDATE_CHECK:-"false"}
export OVERWRITEPROTOCOL=${OVERWRITEPROTOCOL:-"https"}

export PHP_MEMORY_LIMIT=${PHP_MEMORY_LIMIT:-"512M"}
export PHP_UPLOAD_LIMIT=${PHP_UPLOAD_LIMIT:-"512M"}

# SMTP settings (optional)
export SMTP_HOST=${SMTP_HOST:-null}
export SMTP_SECURE=${SMTP_SECURE:-"ssl"}
export SMTP_PORT=${SMTP_PORT:-"465"}
export SMTP_AUTHTYPE=${SMTP_AUTHTYPE:-"LOGIN"}
export SMTP_NAME=${SMTP_NAME:-null}
export SMTP_PASSWORD=${SMTP_PASSWORD:-null}
export MAIL_FROM_ADDRESS=${MAIL_FROM_ADDRESS:-null}
export MAIL_DOMAIN=${MAIL_DOMAIN:-null}

# Set Nextcloud version from Dockerfile
export NEXTCLOUD_VERSION="29.0.16"

echo "✅ Railway environment variables set"

# Required variables
REQUIRED_VARS=("PORT" "POSTGRES_HOST" "POSTGRES_DB" "REDIS_HOST")
WARNING_VARS=("NEXTCLOUD_ADMIN_USER" "NEXTCLOUD_ADMIN_PASSWORD")

    # Use persistent config location
    CONFIG_FILE="/var/www/html/data/config.php"
    # Parse existing config if present (PRESERVE instanceid/passwordsalt/secret)
    if [ -f "$CONFIG_FILE" ]; then
      echo "🔄 Preserving existing config values from persistent storage..."
      INSTANCEID=$(php -r "include '$CONFIG_FILE'; echo \$CONFIG['instanceid'] ?? 'missing';")
      PASSWORDSALT=$(php -r "include '$CONFIG_FILE'; echo \$CONFIG['passwordsalt'] ?? 'missing';")
      SECRET=$(php -r "include '$CONFIG_FILE'; echo \$CONFIG['secret'] ?? 'missing';")

      if [ "$INSTANCEID" = "missing" ] || [ "$PASSWORDSALT" = "missing" ] || [ "$SECRET" = "missing" ]; then
        echo "⚠️ Incomplete existing config, regenerating..."
        INSTANCEID="oc$(openssl rand -hex 10)"
        PASSWORDSALT="$(openssl rand -hex 10)"
        SECRET="$(openssl rand -hex 10)"
      fi
    else
      echo "🆕 First-time config generation..."
      INSTANCEID="oc$(openssl rand -hex 10)"
      PASSWORDSALT="$(openssl rand -hex 10)"
      SECRET="$(openssl rand -hex 10)"
    fi
    export REDIS_PASSWORD="${REDIS_HOST_PASSWORD:-}"
    # Generate template first, then subst env vars
    cat > /var/www/html/config/config.php.template << 'EOF'
<?php
CONFIG_VAR = array (
  'dbtype' => 'pgsql',
  'dbhost' => 'POSTGRES_HOST_VAR',
  'dbport' => 'POSTGRES_PORT_VAR',
  'dbtableprefix' => 'oc_',
  'dbname' => 'POSTGRES_DB_VAR',
  'dbuser' => 'POSTGRES_USER_VAR',
  'dbpassword' => 'POSTGRES_PASSWORD_VAR',
  'installed' => true,
  'config_is_read_only' => false,  // Temp; locked post-upgrade
  'instanceid' => 'INSTANCEID_VAR',
  'passwordsalt' => 'PASSWORDSALT_VAR',
  'secret' => 'SECRET_VAR',
  'redis' =>
  array (
    'host' => 'REDIS_HOST_VAR',
    'port' => 'REDIS_PORT_VAR',
    'password' => 'REDIS_PASSWORD_VAR',
  ),
  'maintenance' => false,
  'update_check_disabled' => false,
);
EOF
    # Use sed to replace placeholders with actual values
    sed \
      -e "s/CONFIG_VAR/\$CONFIG/g" \
      -e "s/POSTGRES_USER_VAR/${POSTGRES_USER}/g" \
      -e "s/POSTGRES_PASSWORD_VAR/${POSTGRES_PASSWORD}/g" \
      -e "s/PASSWORDSALT_VAR/${PASSWORDSALT}/g" \
      -e "s/SECRET_VAR/${SECRET}/g" \
      -e "s/REDIS_PASSWORD_VAR/${REDIS_PASSWORD}/g" \
      /var/www/html/config/config.php.template > /var/www/html/config/config.php
    rm /var/www/html/config/config.php.template

[ -n "$REDIS_PASSWORD" ] && su www-data -s /bin/bash -c "cd /var/www/html && php occ config:system:set redis.password --value='$REDIS_PASSWORD'"
