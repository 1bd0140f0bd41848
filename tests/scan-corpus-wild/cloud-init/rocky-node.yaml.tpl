#cloud-config
hostname: ${hostname}
manage_etc_hosts: false

growpart:
  mode: auto
  devices: ["/"]
  ignore_growroot_disabled: false

resize_rootfs: true

chpasswd:
  list: |
    core:$6$8BIjjuPhRarzlms/$CskgjP5erFn1bQ2pVkfi4iz8Lh5gaC5DlbcZAGTzoB9v7yA1XxqVXayUy1eqP2dYdyFM0d43pHQNQ/0nRngGQR
    root:$6$8BIjjuPhRarzlms/$CskgjP5erFn1bQ2pVkfi4iz8Lh5gaC5DlbcZAGTzoB9v7yA1XxqVXayUy1eqP2dYdyFM0d43pHQNQ/0nRngGQR
  expire: false

users:
  - default
  - name: core
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
    groups: [wheel, adm]
    lock_passwd: false
    ssh_authorized_keys: ${ssh_keys}

disable_root: false
ssh_pwauth: true

network:
  version: 2
  renderer: NetworkManager
  ethernets:
    eth0:
      match:
        name: eth0
      dhcp4: false
      dhcp6: false
      addresses: [ "${ip}/24" ]
      gateway4: ${gateway}
      nameservers:
        search: [ "${cluster_domain}" ]
        addresses: [ "${dns1}", "${dns2}" ]
      routes:
        - to: 10.17.3.0/24
          via: ${host_ip}
        - to: 10.17.4.0/24
          via: ${host_ip}

write_files:
  - path: /etc/sysconfig/selinux
    permissions: "0644"
    content: |
      SELINUX=disabled
      SELINUXTYPE=targeted
  - path: /etc/resolv.conf
    permissions: "0644"
    content: |
      search socialdevs.site
      nameserver 10.17.3.11
      nameserver 8.8.8.8

runcmd:
  - fallocate -l 2G /swapfile && chmod 600 /swapfile && mkswap /swapfile && swapon /swapfile
  - echo "/swapfile none swap sw 0 0" >> /etc/fstab
  - dnf install -y firewalld resolvconf chrony NetworkManager
  - systemctl enable --now firewalld chronyd NetworkManager
  - nmcli connection add type ethernet con-name eth0 ifname eth0 ipv4.method manual ipv4.addresses "${ip}/24" ipv4.gateway "${gateway}" ipv4.dns "${dns1},${dns2}" ipv4.dns-search "${cluster_domain}"
  - nmcli connection up eth0
  - firewall-cmd --permanent --add-port=443/tcp
  - firewall-cmd --permanent --add-port=6443/tcp
  - firewall-cmd --reload
  - sysctl --system

timezone: ${timezone}
