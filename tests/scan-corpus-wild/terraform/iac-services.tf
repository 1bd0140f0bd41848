# GitLab + Future Semaphore/Kestra VM on rawls with Caddy reverse proxy
# Phase 1: GitLab, Phase 2: +Semaphore, Phase 3: +Kestra
# Integrates with Tailscale magic domains and doofus.co

terraform {
  required_providers {
    proxmox = {
      source  = "telmate/proxmox"
      version = "~> 2.9"
    }
    cloudflare = {
      source  = "cloudflare/cloudflare"
      version = "~> 4.0"
    }
  }
}

# Proxmox provider configuration - targeting rawls
provider "proxmox" {
  pm_api_url          = var.proxmox_api_url
  pm_api_token_id     = "terraform@pve!tf"
  pm_api_token_secret = "58623a48-d91e-43e7-abf9-c8ca3888c47f"
  pm_tls_insecure     = true
}

# Cloudflare provider for DNS management (disabled for initial deployment)
# provider "cloudflare" {
#   api_token = var.cloudflare_api_token
# }

# IaC Services VM on rawls (GitLab + future Semaphore/Kestra)
resource "proxmox_vm_qemu" "iac_services" {
  name        = "iac-services"
  target_node = var.proxmox_node
  
  # VM Configuration - sized for GitLab + Semaphore + Kestra
  cores   = 8   # Plenty for all services + CI runners
  memory  = 16384  # 16GB for growth (GitLab 8GB + Semaphore 2GB + Kestra 4GB + buffer)
  scsihw  = "virtio-scsi-pci"
  
  # Boot configuration
  boot = "order=scsi0"
  
  # Network configuration
  network {
    model  = "virtio"
    bridge = "vmbr0"
  }
  
  # Primary disk - sized for all services and data
  disk {
    type    = "scsi"
    storage = var.proxmox_storage
    size    = "120G"  # Space for GitLab repos, CI artifacts, and future services
    format  = "qcow2"
  }
  
  # Cloud-init configuration
  os_type = "cloud-init"
  
  # Cloud-init drive
  disk {
    type    = "cloudinit"
    storage = var.proxmox_storage
    size    = "1G"
  }
  
  # IP configuration for homelab network
  ipconfig0 = "ip=${var.iac_services_ip}/24,gw=${var.gateway_ip}"
  nameserver = var.dns_servers
  
  # SSH keys
  sshkeys = var.ssh_public_key
  
  # Cloud-init user data - inline configuration
  ciuser     = "iac"
  cipassword = "FhioLxvvqbmf340!"
  
  # Start after creation
  automatic_reboot = true
  
  lifecycle {
    ignore_changes = [
      network,
      disk,
    ]
  }
}

# Output important information
output "iac_services_ip" {
  value = var.iac_services_ip
}

output "gitlab_urls" {
  value = {
    external = "https://gitlab.doofus.co"
    tailscale = "https://gitlab.rawls.ts.net"
  }
}

output "ssh_command" {
  value = "ssh iac@${var.iac_services_ip}"
}
