#!/bin/bash
# systemctl restart docker docker.socket ; sleep 5

# Set email details
email_recipient="devops@edecdk.dev"
email_subject="Wordfence Daily Scan Hranker-OVH-WebServer-1"
> /root/wordfence.csv

# Define output file
output_csv="/root/wordfence.csv"

# Webhook URLs
WEBHOOK_URL_SUCCESS="https://udthqrptim.webhook.office.com/webhookb2/fbe95146-80a5-4218-964c-428be9e8c770@0ece4741-c21c-41e9-83f8-6994b947be56/IncomingWebhook/837d59ca61773e86c57a56239fe83fc7/9c47b968-83bc-458a-ab1f-3a6948eb6b74/V2gGMrug4beNYFRqAPnOEQXlsywblFNlIXUEn_csdZC07p"
WEBHOOK_URL_FAILURE="https://udthqrptim.webhook.office.com/webhookb2/fbe95146-80a5-4218-964c-428be9e8c770@0ece4741-c21c-41e9-83f8-6994b947be56/IncomingWebhook/837d59ca61773e86c57a56239fe83fc7/9c47b968-83bc-458a-ab1f-3a6948eb6b74/V2gGMrug4beNYFRqAPnOEQXlsywblFNlIXUEn_csdZC07p"


# Get server IP and name
server_ip=$(hostname -I | awk '{print $1}')
server_name="Hranker-OVH-WebServer-1"

# Function to send webhook notification
send_webhook() {
  local status="$1"
  local message="$2"
  local csv_base64="$3"
  local url="$4"
  curl -X POST -H "Content-Type: application/json" -d "{
    \"title\": \"Wordfence Scan Status\",
    \"text\": \"$message\",
    \"summary\": \"Wordfence Scan Notification\",
    \"sections\": [
      {
        \"activityTitle\": \"Wordfence Scan Status\",
        \"activitySubtitle\": \"$message\",
        \"facts\": [
          {
            \"name\": \"Status\",
            \"value\": \"$status\"
          },
          {
            \"name\": \"Server Name\",
            \"value\": \"$server_name\"
          },
          {
            \"name\": \"CSV Content (base64)\",
            \"value\": \"$csv_base64\"
          }
        ],
        \"markdown\": true
      }
    ]
  }" $url
}

# Execute the Wordfence scan
wordfence malware-scan -a --output-path "$output_csv" /var/www

# Check if the CSV has content
if [ $? -eq 0 ] && [ -s "$output_csv" ]; then
  # Read the CSV content and encode it in base64
  csv_base64=$(base64 "$output_csv")

  # Send success webhook with base64 CSV content
  send_webhook "success" "Wordfence scan completed successfully. See attached report." "$csv_base64" $WEBHOOK_URL_SUCCESS
else
  # No content in CSV or scan failed - log this, but no email needed
  echo "Wordfence scan completed, no issues found or scan failed."

  # Send failure webhook
  send_webhook "failure" "Wordfence scan failed or no issues found." "" $WEBHOOK_URL_FAILURE
fi
