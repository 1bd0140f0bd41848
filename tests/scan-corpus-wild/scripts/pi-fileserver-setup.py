    def Setup_Server(self):
        while not self.test_connection():
            print("sleeping for 3s .. retrying internet connection ..")
            time.sleep(3)

        try:
            print("\n################################\n"
                  "Setting raspi-config options...\n"
                  "################################\n")
            time.sleep(2)
            os.system("sudo raspi-config nonint do_vnc 0")
            os.system("sudo raspi-config nonint do_ssh 0")
            print("\n")

            print("\n################################\n"
                  "Installing os dependency's...\n"
                  "################################\n")
            time.sleep(2)
            os.system("sudo apt-get update")
            os.system("sudo apt-get upgrade -y")

            print("\n################################\n"
                  "Installing library's....\n"
                  "################################\n")
            time.sleep(2)
            os.system("sudo apt-get -y install libjpeg-dev zlib1g-dev libfreetype6-dev libopenjp2-7 libtiff5")

            print("\n################################\n"
                  "Fetching the files from the Fileserver.\n"
                  "################################\n")
            os.system("mkdir /home/pi/ServerFiles")
            os.system("sudo mount -t cifs -o username=pi,password=agqsdumcd "
                      "//169.254.0.2/ServerFiles /home/pi/ServerFiles")
            os.system("sudo chmod -R 755 /home/pi/ServerFiles")

            automount_fstab = open("/etc/fstab", "a")
            automount_fstab.write("//169.254.0.2/ServerFiles /home/pi/ServerFiles cifs "
                                  "username=pi,password=agqsdumcd 0 0\n")
            automount_fstab.close()

        except:
            print("\n################################\n"
                  "Installer failed. Check the base installation commands.\n"
                  "################################\n")

        try:
            from threading import Thread
            import socket
        except ImportError:
            print("\n################################\n"
                  "Baseimports are not working.\n"
                  "################################\n")

        try:
            import mysql.connector

        except ImportError:
            print("\n################################\n"
                  "Installing mysql packages...\n"
                  "################################\n")
            os.system("pip3 install mysql.connector")
            import mysql.connector
