using EcsNet.Cluster.Hosting;
using EcsNet.Host;

// A node: settings from appsettings.json, environment (EcsNet__Node__Roles__0=preprocess, ...) and the command line
// (--EcsNet:Node:Port=4053); health endpoints and /metrics on the ASP.NET Core URLs (--urls, ASPNETCORE_URLS).
var builder = WebApplication.CreateBuilder(args);
builder.Services.AddEcsNetCluster(builder.Configuration);
builder.Services.AddEcsNetMetrics();
var app = builder.Build();
app.MapEcsNetHealthChecks();
app.MapEcsNetMetrics();
await app.RunAsync();
