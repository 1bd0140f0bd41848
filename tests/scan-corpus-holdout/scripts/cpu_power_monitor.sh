#!/bin/bash
set -e 

if [ -z "$1" ] || [ -z "$2" ] || [ -z "$3" ]; then
  echo "Usage: $0 <res_dir> <ramp_time> <test_mode>"
  exit 1
fi

echo "Start recodring cpuutil & power stat" 

res_dir=$1
ramp_time=$2
test_mode=$3

mkdir -p $res_dir
file_path=$res_dir/cpuutil_power_stat_${test_mode}
file_path_iotop="$res_dir/iotop_stat_${test_mode}"


sleep $((ramp_time))
ycsb_pid=$(pgrep ycsb | head -n 1)

if [ -z "$ycsb_pid" ]; then
    echo "ycsb is not running. Exiting monitoring script."
    exit 1
fi


sudo iotop -b -d 1 | grep --line-buffered -E '^Total|^Current' >> "$file_path_iotop" &
iotop_pid=$!

# 计数器初始化
count_2=0

while true; do
    sleep 1
    count_2=$((count_2 + 1))

    # 检查 ycsb 进程是否运行
    if ! ps -p "$ycsb_pid" > /dev/null; then
        echo "ycsb has stopped. Exiting monitoring script."
        break
    fi

    # 记录 CPU 使用率
    time=$(date "+%Y-%m-%d %H:%M:%S")
    cpu_util=$(top -b -n1 | awk '/%Cpu\(s\):/ {print $2, $4, $6}')
    echo "$time - CPU_Util $cpu_util" >> "$file_path"

    #### 每 2 秒记录功率信息
    # if (( count_2 >= 2 )); then
    #     # power=$(ipmitool -I lanplus -H 192.168.111.40 -U Administrator -P Lgzrm@0175 sdr elist | awk -F"|" '/^Power  /{print $5}')
    #     power=$(ipmitool -I lanplus -H 192.168.111.40 -U Administrator -P Lgzrm@0175 sdr elist | awk '/Power/ && !/Button/ && !/Power1/ && !/Power2/ {printf "%s %s %s ", $1, $(NF-1), $NF} END {print ""}')
    #     echo "$time - $power" >> "$file_path"
    #     count_2=0  # 重置计数器
    # fi
    power=$(ipmitool -I lanplus -H 192.168.111.40 -U Administrator -P Lgzrm@0175 sdr elist | awk '/Power/ && !/Button/ && !/Power1/ && !/Power2/ {printf "%s %s %s ", $1, $(NF-1), $NF} END {print ""}')
    echo "$time - $power" >> "$file_path"

done

# 停止 iotop 后台进程
kill "$iotop_pid" 2>/dev/null
