if [[ -f /usr/dockereverything/mariadbinit/init.sql ]]; then
  echo "mariadb服务器配置文件已经存在，正在跳过，执行安装"
  chmod -R 777 /usr/dockereverything/mariadbinit/init.sql
else
  mkdir mariadbinit
  touch /usr/dockereverything/mariadbinit/init.sql
  echo "CREATE DATABASE IF NOT EXISTS trojan;" >/usr/dockereverything/mariadbinit/init.sql
  echo "CREATE DATABASE IF NOT EXISTS nextcloud;" >>/usr/dockereverything/mariadbinit/init.sql
  echo "CREATE USER IF NOT EXISTS 'nextcloud'@'%' IDENTIFIED BY '${password1}';" >>/usr/dockereverything/mariadbinit/init.sql
  echo "CREATE USER IF NOT EXISTS 'netdata'@'%' IDENTIFIED BY '${password1}';" >>/usr/dockereverything/mariadbinit/init.sql
  echo "CREATE USER IF NOT EXISTS 'npm'@'%' IDENTIFIED BY '${password1}';" >>/usr/dockereverything/mariadbinit/init.sql
  echo "GRANT ALL PRIVILEGES ON *.* TO 'nextcloud'@'%';" >>/usr/dockereverything/mariadbinit/init.sql
  echo "FLUSH PRIVILEGES;" >>/usr/dockereverything/mariadbinit/init.sql
  chmod -R 777 /usr/dockereverything/mariadbinit/init.sql
fi

install_dockereverything() {
  ## Install Miniflux
  cd /usr/dockereverything
  cat >"/usr/dockereverything/docker-compose.yml" <<EOF
version: '3.8'
services:
  miniflux:
    # 8280
    image: miniflux/miniflux:latest
    container_name: miniflux
    restart: always
    ports:
      - "8280:8080"
    depends_on:
      - postgresqldb
    volumes:
      - miniflux_socket:/socket/postgresql
    environment:
      #新版不建议在套接字中指定主机
      - TZ=Aisa/Shanghai
      - DATABASE_URL=user=miniflux password=adminadmin dbname=miniflux sslmode=disable host=/socket/postgresql port=5432
      - BASE_URL=https://127.0.0.1/miniflux/
      - RUN_MIGRATIONS=1
      - CREATE_ADMIN=1
      - ADMIN_USERNAME=admin
      - ADMIN_PASSWORD=adminadmin
    healthcheck:
      test: [ "CMD", "/usr/bin/miniflux", "-healthcheck", "auto" ]
      interval: 10s
      start_period: 30s

  postgresqldb:
    container_name: postgresqldb
    image: postgres:latest
    restart: unless-stopped
    environment:
      - POSTGRES_USER=miniflux
      - POSTGRES_PASSWORD=adminadmin
      - POSTGRES_DB=miniflux
    volumes:
      - miniflux_socket:/var/run/postgresql

  nextcloud:
    image: nextcloud:latest
    container_name: nextcloud
    restart: always
    user: "1000:1000"
    depends_on:
      - mariadb
      - redis
    environment:
      - REDIS_HOST=redis
      - PHP_UPLOAD_LIMIT=10G
      - NEXTCLOUD_TRUSTED_DOMAINS='localhost' '172.18.0.*' '172.*.*.*'
      - TZ=Aisa/Shanghai
      - OVERWRITEPROTOCOL='https'
      - DB_TYPE=mysql
      - DB_NAME=nextcloud
      - DB_USER=nextcloud
      - DB_PASSWORD=${password1}
      - NEXTCLOUD_ADMIN_USER=admin
      - NEXTCLOUD_ADMIN_PASSWORD=fnsbhyamt
      - DB_HOST=mariadb
    ports:
      - 8281:80
    volumes:
      - /usr/dockereverything/nextcloud:/var/www/html

  mariadb:
    image: mariadb:10.7.4
    container_name: mariadb
    restart: unless-stopped
    volumes:
      - /usr/dockereverything/mariadb:/var/lib/mysql
      - /usr/dockereverything/mariadbinit:/docker-entrypoint-initdb.d
    ports:
      - 3306:3306
    environment:
      - MYSQL_ROOT_PASSWORD="${password1}"
      # - MYSQL_DATABASE=init
      # - MYSQL_USER=nextcloud
      - MYSQL_PASSWORD="${password1}"
      - TZ="Asia/Shanghai"

  nginxmanager:
    image: 'jc21/nginx-proxy-manager:latest'
    container_name: nginx_manager
    restart: unless-stopped
    depends_on:
      - mariadb
    environment:
      DB_MYSQL_HOST: "mariadb"
      DB_MYSQL_PORT: 3306
      DB_MYSQL_USER: "npm"
      DB_MYSQL_PASSWORD: "${password1}"
      DB_MYSQL_NAME: "npm"
    volumes:
      - /usr/dockereverything/nginx/data:/data
      - /usr/dockereverything/nginx/letsencrypt/${domain}_ecc:/etc/letsencrypt
volumes:
  miniflux_socket:
EOF
  sed -i "s/adminadmin/${password1}/g" docker-compose.yml
  docker-compose build --pull
  docker-compose up -d
  while [[ -z ${passw} ]]; do
    passw=$(whiptail --inputbox --nocancel "请輸入你的freenom密码 | Please enter your password" 8 68 --title "PASSword input" 3>&1 1>&2 2>&3)
  done
  clear
  while [[ -z ${TELEGRAM_BOT_TOKEN} ]]; do
    TELEGRAM_BOT_TOKEN=$(whiptail --inputbox --nocancel "请輸入你的TELEGRAM_BOT_TOKEN | Please enter your TELEGRAM_BOT_TOKEN" 8 68 --title "TELEGRAM_BOT_TOKEN input" 3>&1 1>&2 2>&3)
  done
  clear
  cd /usr/dockereverything/freenom
  sed -i "s/FREENOM_PASSWORD=''/FREENOM_PASSWORD=${passw}/g" /usr/dockereverything/freenom/conf/.env
  sed -i "s/TELEGRAM_BOT_TOKEN=''/TELEGRAM_BOT_TOKEN=${TELEGRAM_BOT_TOKEN}/g" /usr/dockereverything/freenom/conf/.env
  sed -i "s/TELEGRAM_BOT_ENABLE=0/TELEGRAM_BOT_ENABLE=1/g" /usr/dockereverything/freenom/conf/.env
}
