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
  pm_api_token_secret = "36154f97-2e9e-4e2a-a2ca-014e1be4acf3"
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
  
  # Cloud-init configuration
  os_type = "cloud-init"
  
  # IP configuration for homelab network
  ipconfig0 = "ip=${var.iac_services_ip}/24,gw=${var.gateway_ip}"
  nameserver = var.dns_servers
  
  # SSH keys
  sshkeys = var.ssh_public_key
  
  # Cloud-init user data - inline configuration
  ciuser     = "iac"
  cipassword = "UjexTykbevvq388!"
  
  # Start after creation
  automatic_reboot = true
  
  lifecycle {
    ignore_changes = [
      network,
      disk,
    ]
  }
}

output "ssh_command" {
  value = "ssh iac@${var.iac_services_ip}"
}
