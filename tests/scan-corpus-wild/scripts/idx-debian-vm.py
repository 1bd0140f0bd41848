def prepare_vm():
    print(f"🛠️  2. PREPARING VM ({VM_NAME})...")
    
    vm_dir = os.path.expanduser("~/vms")
    os.makedirs(vm_dir, exist_ok=True)
    
    img_file = f"{vm_dir}/{VM_NAME}.img"
    seed_file = f"{vm_dir}/{VM_NAME}-seed.iso"
    
    # 1. Download Image
    if not os.path.exists(img_file):
        print(f"   ⬇️  Downloading Debian 12 (This may take a minute)...")
        subprocess.run(["wget", "-q", "--show-progress", "-O", img_file + ".tmp", OS_URL])
        os.rename(img_file + ".tmp", img_file)
        
        # Resize Disk
        print(f"   DISK: Resizing to {DISK_SIZE}...")
        os.system(f"qemu-img resize {img_file} {DISK_SIZE} >/dev/null 2>&1")
    else:
        print("   ✅ Disk image ready.")

    # 2. Create Cloud-Init Seed (User: user / Pass: twpprhvr)
    if not os.path.exists(seed_file):
        print("   🔑 Generating Cloud-Init Seed...")
        
        # Generate password hash using openssl
        pass_hash = subprocess.getoutput("openssl passwd -6 twpprhvr")
        
        user_data = f"""#cloud-config
hostname: {VM_NAME}
ssh_pwauth: true
disable_root: false
users:
  - name: user
    sudo: ALL=(ALL) NOPASSWD:ALL
    shell: /bin/bash
    password: {pass_hash}
chpasswd:
  list: |
    root:twpprhvr
    user:twpprhvr
  expire: false
"""
        meta_data = f"""instance-id: iid-{VM_NAME}
local-hostname: {VM_NAME}
"""
        
        with open("user-data", "w") as f: f.write(user_data)
        with open("meta-data", "w") as f: f.write(meta_data)
        
        # Generate ISO
        os.system(f"cloud-localds {seed_file} user-data meta-data")
        
        # Cleanup
        if os.path.exists("user-data"): os.remove("user-data")
        if os.path.exists("meta-data"): os.remove("meta-data")

    return img_file, seed_file

    print("🔑 VM Login:")
    print("   Username: user")
    print("   Password: twpprhvr")
    print("-" * 60)
