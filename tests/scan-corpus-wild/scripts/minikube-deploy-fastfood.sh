#!/bin/bash

# Cores para melhor visualização
GREEN='\033[0;32m'
RED='\033[0;31m'
YELLOW='\033[1;33m'
BLUE='\033[0;34m'
NC='\033[0m' # No Color

echo -e "${BLUE}=== Script de Implantação do FastFood no Minikube ===${NC}"

# Criar diretório temporário para os arquivos YAML
TEMP_DIR=$(mktemp -d)
echo -e "${YELLOW}Criando arquivos YAML no diretório temporário: $TEMP_DIR${NC}"

# Função para criar os arquivos YAML
create_yaml_files() {
    # ConfigMap
    cat > "${TEMP_DIR}/configmap.yaml" << 'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: fastfood-config
  labels:
    app: fastfood
data:
  SPRING_PROFILES_ACTIVE: "dev"
  SPRING_DATASOURCE_URL: "jdbc:mysql://mysql-svc:3306/fastfood_db?useSSL=false&allowPublicKeyRetrieval=true"
  SPRING_JPA_HIBERNATE_DDL_AUTO: "update"
  DATABASE_DIALECT: "org.hibernate.dialect.MySQLDialect"
  SERVER_PORT: "8080"
  TZ: "America/Sao_Paulo"
EOF

    # Secret
    cat > "${TEMP_DIR}/secret.yaml" << 'EOF'
apiVersion: v1
kind: Secret
metadata:
  name: fastfood-secrets
  labels:
    app: fastfood
type: Opaque
data:
  MYSQL_ROOT_PASSWORD: amVod3Z0Znp0Y3pz
  MYSQL_DATABASE: ZmFzdGZvb2RfZGI=
  MYSQL_USER: ZmFzdGZvb2R1c2Vy
  MYSQL_PASSWORD: dG1rYmt4cnVmY2Zy
  MERCADO_PAGO_KEY: WU9VUl9NRVJDQURPUEFHT19LRVk=
  SPRING_DATASOURCE_USERNAME: ZmFzdGZvb2R1c2Vy
  SPRING_DATASOURCE_PASSWORD: dG1rYmt4cnVmY2Zy
EOF

    # MySQL PVC
    cat > "${TEMP_DIR}/mysql-pvc.yaml" << 'EOF'
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: mysql-pvc
  labels:
    app: mysql
spec:
  accessModes:
    - ReadWriteOnce
  resources:
    requests:
      storage: 1Gi
EOF
}

while [ "$MYSQL_READY" = false ] && [ $RETRY_COUNT -lt $MAX_RETRIES ]; do
    RETRY_COUNT=$((RETRY_COUNT+1))

    # Verificar se o pod está rodando
    MYSQL_POD=$(kubectl get pods -l app=mysql -o jsonpath='{.items[0].metadata.name}' 2>/dev/null)

    if [ -z "$MYSQL_POD" ]; then
        echo -e "${YELLOW}Aguardando criação do pod MySQL... ($RETRY_COUNT/$MAX_RETRIES)${NC}"
        sleep 5
        continue
    fi

    # Verificar se o MySQL está respondendo dentro do pod
    if kubectl exec $MYSQL_POD -- mysqladmin ping -h localhost -u root -pjehwvtfztczs --silent &> /dev/null; then
        echo -e "${GREEN}MySQL está pronto e respondendo!${NC}"
        MYSQL_READY=true
    else
        # Tentar uma abordagem alternativa para verificar se o MySQL está pronto
        if kubectl exec $MYSQL_POD -- mysql -u root -pjehwvtfztczs -e "SELECT 1;" &> /dev/null; then
            echo -e "${GREEN}MySQL está pronto e respondendo!${NC}"
            MYSQL_READY=true
        else
            echo -e "${YELLOW}MySQL ainda não está respondendo. Aguardando... ($RETRY_COUNT/$MAX_RETRIES)${NC}"
            sleep 10
        fi
    fi
done

# Verificar se o banco de dados existe e criá-lo se necessário
echo -e "${YELLOW}Garantindo que o banco de dados fastfood_db exista...${NC}"
kubectl exec $MYSQL_POD -- mysql -u root -pjehwvtfztczs -e "CREATE DATABASE IF NOT EXISTS fastfood_db;"
if [ $? -eq 0 ]; then
    echo -e "${GREEN}Banco de dados fastfood_db está disponível.${NC}"
else
    echo -e "${RED}Não foi possível criar o banco de dados. A aplicação pode falhar.${NC}"
fi
