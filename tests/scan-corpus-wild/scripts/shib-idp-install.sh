r=/vagrant/idp3

cd $r
. ./config

SRC=$r/_work/$N

cd ${SRC}

MERGE_PROPERTIES=merge.properties
tee $MERGE_PROPERTIES <<EOF
idp.entityID=https://idp3.andrew.cmu.edu/shibboleth
idp.sealer.storePassword=nukwrx
idp.sealer.keyPassword=nukwrx
idp.scope=andrew.cmu.edu
EOF
 
# -Didp.uri.subject.alt.name="DNS:${HOST}.${SCOPE}" \
# -Didp.sealer.alias=sealer \

sudo JAVA_HOME=/usr ./bin/install.sh \
  -noinput \
  -Didp.home=${DEST} \
  -Didp.src.dir=${SRC} \
  -Didp.target.dir=${DEST} \
  -Didp.home.input=${DEST} \
  -Didp.host.name=${HOST}.${SCOPE} \
  -Didp.keystore.pass=none \
  -Didp.scope=${SCOPE} \
  -Didp.merge.properties=${MERGE_PROPERTIES} \
  -Didp.sealer.password=nukwrx \
  -Didp.keystore.password=nukwrx \
  -Dinstall.config=yes

cd ${DEST}/bin
sudo JAVA_HOME=/usr ./build.sh -Didp.target.dir=${DEST}

cd ${DEST}/conf
sudo patch -p1 < $r/idp-conf.patch
sudo sed -i "s/dc=example,dc=org/dc=andrew,dc=cmu,dc=edu/g" /opt/shibboleth-idp/conf/ldap.properties
cd ${DEST}
sudo patch -p1 < $r/attributes.patch
sudo patch -p1 < $r/tou.patch
sudo patch -p1 < $r/pid.patch


sudo mkdir -p /etc/ssl/aai
sudo wget -q https://www.aai.dfn.de/fileadmin/metadata/dfn-aai.pem -O /etc/ssl/aai/dfn-aai.pem
