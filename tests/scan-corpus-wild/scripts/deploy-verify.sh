ENV_FILE="apps/web/.env.development.local"

if [ -f "$ENV_FILE" ]; then
  echo -e "${GREEN}✓${NC} Environment file found"
  
  # Check critical vars
  if grep -q "NG_APP_SUPABASE_URL" "$ENV_FILE"; then
    echo -e "${GREEN}✓${NC} Supabase URL configured"
  else
    echo -e "${RED}✗${NC} Supabase URL missing"
    exit 1
  fi
  
  if grep -q "NG_APP_SUPABASE_ANON_KEY" "$ENV_FILE"; then
    echo -e "${GREEN}✓${NC} Supabase Anon Key configured"
  else
    echo -e "${RED}✗${NC} Supabase Anon Key missing"
    exit 1
  fi
else
  echo -e "${RED}✗${NC} Environment file not found: $ENV_FILE"
  exit 1
fi

# ═══════════════════════════════════════════════════════════════
# 4. VERIFY DATABASE CONNECTION
# ═══════════════════════════════════════════════════════════════

echo ""
echo -e "${BLUE}━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━${NC}"
echo -e "${BLUE}4. Database Connection${NC}"
echo -e "${BLUE}━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━${NC}"

export PGPASSWORD='WLDVCFJPR15022883'

# Test connection
if psql "postgresql://postgres.hbrpomqvptvescytmqjg@aws-1-us-east-2.pooler.supabase.com:6543/postgres" -c "SELECT NOW();" > /dev/null 2>&1; then
  echo -e "${GREEN}✓${NC} Database connection successful"
else
  echo -e "${RED}✗${NC} Database connection failed"
  exit 1
fi

# Check Cron Jobs
CRON_COUNT=$(psql "postgresql://postgres.hbrpomqvptvescytmqjg@aws-1-us-east-2.pooler.supabase.com:6543/postgres" -t -c "SELECT COUNT(*) FROM cron.job WHERE active = true;" 2>/dev/null)

if [ "$CRON_COUNT" -gt 0 ]; then
  echo -e "${GREEN}✓${NC} Cron Jobs active: $CRON_COUNT"
else
  echo -e "${YELLOW}⚠${NC}  No active Cron Jobs found"
fi
